"""One-run config overrides never reach shared files (issue 17 item 5).

``list backends.vllm.port=8001`` (a README example) used to leave port 8001 in
``model_registry.json``, where legacy readers see it. Only a run whose config
composes the same snapshot as the default configuration writes it (and its
stamps): overrides that only pick the registry (``registry.dir=``) or change
values the layers do not read still refresh it.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import CLI, DEMO_REGISTRY, ROOT, SNAPSHOT, copy_registry, read_json, run_cli

PORT = "backends.vllm.port=8001"


def ports(folder) -> set:
    return {json.dumps(e["backend_config"].get("port")) for e in read_json(folder / SNAPSHOT)}


def test_a_read_with_a_config_override_leaves_the_snapshot_alone(demo_registry):
    on = f"registry.dir={demo_registry}"
    assert run_cli("list", on).returncode == 0
    before = (demo_registry / SNAPSHOT).read_bytes()
    assert "24001" in ports(demo_registry)

    for args in (("list", PORT), ("select", "qwen2.5-vl-7b-instruct_(AWQ)", PORT)):
        result = run_cli(*args, on)
        assert result.returncode == 0, result.stderr
        assert (demo_registry / SNAPSHOT).read_bytes() == before, args
    # ... while the run itself sees its override
    selected = run_cli("select", "qwen2.5-vl-7b-instruct_(AWQ)", PORT, on).json()
    assert selected["endpoint"] == "http://localhost:8001/v1"


def test_a_first_run_with_an_override_writes_no_snapshot(demo_registry):
    result = run_cli("list", PORT, f"registry.dir={demo_registry}")
    assert result.returncode == 0, result.stderr
    assert not (demo_registry / SNAPSHOT).exists()
    assert run_cli("list", f"registry.dir={demo_registry}").returncode == 0
    assert "8001" not in ports(demo_registry) and "24001" in ports(demo_registry)


def test_the_snapshot_command_with_an_override_says_why_it_wrote_nothing(demo_registry):
    on = f"registry.dir={demo_registry}"
    result = run_cli("snapshot", PORT, on)
    assert result.returncode == 0, result.stderr
    assert result.json()["written"] is False
    assert "backends.vllm.port" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (demo_registry / SNAPSHOT).exists()


def test_overrides_that_do_not_change_the_snapshot_still_refresh_it(demo_registry, tmp_path):
    # registry.dir picks the folder; profile=ci and hashing.workers change no entry value
    result = run_cli("list", f"registry.dir={demo_registry}", "profile=ci", "hashing.workers=1")
    assert result.returncode == 0, result.stderr
    assert "24001" in ports(demo_registry)


def test_an_override_of_the_composition_rules_writes_no_snapshot_or_stamp(
    real_registry, isolated_cache
):
    (real_registry / SNAPSHOT).unlink()
    on = f"registry.dir={real_registry}"
    result = run_cli("list", on, "registry.dynamic_fields=[artifacts]")
    assert result.returncode == 0, result.stderr
    assert not (real_registry / SNAPSHOT).exists()
    assert not list((isolated_cache / "snapshots").glob("*.json"))
    assert run_cli("list", on).returncode == 0  # the default configuration writes both
    assert (real_registry / SNAPSHOT).exists()
    assert list((isolated_cache / "snapshots").glob("*.json"))


def test_a_port_override_on_a_registry_without_interpolation_changes_nothing_shared(
    real_registry, isolated_cache
):
    """The real registry has no ${...}: a port override cannot change its
    snapshot, so the run may confirm it (same bytes as a default run)."""
    on = f"registry.dir={real_registry}"
    assert run_cli("list", on).returncode == 0
    default_bytes = (real_registry / SNAPSHOT).read_bytes()
    assert run_cli("list", on, PORT).returncode == 0
    assert (real_registry / SNAPSHOT).read_bytes() == default_bytes


def test_the_default_config_cache_is_not_rewritten_by_an_override(demo_registry, isolated_cache):
    on = f"registry.dir={demo_registry}"
    assert run_cli("list", on).returncode == 0
    cached = {p.name: p.read_bytes() for p in isolated_cache.glob("config-*.json")}
    assert run_cli("list", on, PORT).returncode == 0
    after = {p.name: p.read_bytes() for p in isolated_cache.glob("config-*.json")}
    assert {name: after[name] for name in cached} == cached
    for name in set(after) - set(cached):  # the override's own key holds only its run
        assert b"8001" in after[name]


def test_the_hydra_app_with_an_override_leaves_the_snapshot_alone(demo_registry, tmp_path):
    on = f"registry.dir={demo_registry}"
    assert run_cli("list", on).returncode == 0
    before = (demo_registry / SNAPSHOT).read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "loader.apps", "list", PORT, on],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (demo_registry / SNAPSHOT).read_bytes() == before


def test_doit_with_an_override_leaves_the_snapshot_alone(tmp_path):
    folder = copy_registry(DEMO_REGISTRY, tmp_path / "demo", snapshot=False)
    on = f"registry.dir={folder}"
    doit = [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py")]
    first = subprocess.run([*doit, "snapshot", on], capture_output=True, text=True, timeout=180)
    assert first.returncode == 0, first.stderr
    before = (folder / SNAPSHOT).read_bytes()
    again = subprocess.run(
        [*doit, "snapshot", on, "backends.vllm.port=7777"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert again.returncode == 0, again.stderr
    assert (folder / SNAPSHOT).read_bytes() == before
    assert str(CLI)  # the CLI and doit share one rule (loader.registry)
