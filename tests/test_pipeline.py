"""The doit task graph over real model folders: real doit runs in a temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap

import pytest
from conftest import CLI, ROOT, SNAPSHOT, read_json, sha
from pipeline_support import PYTHON, SHARDS, make_site, ran, skipped


@pytest.fixture
def site(tmp_path):
    return make_site(tmp_path)


def aggregate_of(folder) -> str:
    lines = sorted(f"{sha((folder / rel).read_bytes())}  {rel}" for rel in SHARDS)
    return sha("\n".join(lines).encode())


def recorded(site) -> dict[str, str]:
    return {e["name"]: e["artifacts"]["aggregate_sha256"] for e in site.discovered()}


def bump_mtime(path) -> None:
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


ALL_TASKS = [
    "hash:alpha",
    "hash:beta_(Q4_K_M)",
    "snapshot",
    "verify:alpha",
    "verify:beta_(Q4_K_M)",
]


def test_first_run_hashes_verifies_and_writes_the_snapshot(site):
    first = site.doit()
    assert first.returncode == 0, first.stderr
    assert ran(first.stdout) == ALL_TASKS
    assert recorded(site) == {n: aggregate_of(p) for n, p in site.models.items()}
    snapshot = {e["name"]: e for e in read_json(site.registry / SNAPSHOT)}
    assert snapshot["alpha"]["backend_config"]["port"] == 24001
    # doit's database lives in the registry's state folder, not in the current one
    assert (site.registry / ".imageworks-state" / "doit.sqlite3").is_file()


AUDIT = textwrap.dedent(
    """
    import runpy, sys
    weights = sys.argv.pop(1)
    opened = []
    def hook(event, args):
        if event == "open" and isinstance(args[0], str) and args[0].startswith(weights):
            opened.append(args[0])
    sys.addaudithook(hook)
    sys.argv[0] = "doit"
    try:
        runpy.run_module("doit", run_name="__main__")
    finally:
        print("OPENED", len(opened), sorted(set(opened)), file=sys.stderr)
    """
)


def test_a_second_run_runs_no_action_and_reads_no_weights(site, tmp_path):
    assert site.doit().returncode == 0
    second = subprocess.run(
        [
            PYTHON,
            "-c",
            AUDIT,
            str(tmp_path / "weights"),
            "-f",
            str(site_dodo()),
            f"registry.dir={site.registry}",
        ],
        capture_output=True,
        text=True,
        env=site.env,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr
    assert ran(second.stdout) == [] and skipped(second.stdout) == ALL_TASKS
    assert "OPENED 0 []" in second.stderr


def site_dodo():
    from pipeline_support import DODO

    return DODO


def test_touching_one_shard_reruns_only_that_models_chain(site):
    assert site.doit().returncode == 0
    bump_mtime(site.models["alpha"] / SHARDS[1])
    again = site.doit()
    assert again.returncode == 0, again.stderr
    # snapshot follows: verify recorded a new last_verified in the discovered layer
    assert ran(again.stdout) == ["hash:alpha", "snapshot", "verify:alpha"]
    assert ran(site.doit().stdout) == []


def test_a_changed_shard_is_rehashed_and_recorded(site):
    assert site.doit().returncode == 0
    shard = site.models["beta_(Q4_K_M)"] / SHARDS[2]
    shard.write_bytes(b"new weights")
    again = site.doit()
    assert ran(again.stdout) == ["hash:beta_(Q4_K_M)", "snapshot", "verify:beta_(Q4_K_M)"]
    assert recorded(site)["beta_(Q4_K_M)"] == aggregate_of(site.models["beta_(Q4_K_M)"])


def test_a_curated_edit_runs_only_the_snapshot(site):
    assert site.doit().returncode == 0
    curated = site.curated()
    curated[1]["display_name"] = "Beta, renamed"
    site.write_curated(curated)
    again = site.doit()
    assert again.returncode == 0, again.stderr
    assert ran(again.stdout) == ["snapshot"]
    snapshot = {e["name"]: e for e in read_json(site.registry / SNAPSHOT)}
    assert snapshot["beta_(Q4_K_M)"]["display_name"] == "Beta, renamed"


def test_a_config_change_reruns_exactly_the_snapshot(site, tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    site.env["IMAGEWORKS_LOADER_CONF"] = str(conf)
    assert site.doit().returncode == 0
    backends = conf / "backends" / "default.yaml"
    backends.write_text(backends.read_text().replace("port: 24001", "port: 7777", 1))
    again = site.doit("snapshot")
    assert again.returncode == 0, again.stderr
    assert ran(again.stdout) == ["snapshot"]
    snapshot = read_json(site.registry / SNAPSHOT)
    assert {e["backend_config"]["port"] for e in snapshot} == {7777}
    # an unrelated value reruns nothing
    assert ran(site.doit(overrides=("hashing.workers=1",)).stdout) == []


@pytest.mark.parametrize("form", ["plain", "overrides-variable"])
def test_a_one_run_override_never_reaches_the_shared_snapshot(site, form):
    """Issue 17: the snapshot task reruns for the changed value, but the shared
    snapshot is written only from the default configuration."""
    assert site.doit().returncode == 0
    before = (site.registry / SNAPSHOT).read_bytes()
    override = "backends.vllm.port=7777"
    words = (override,) if form == "plain" else (f"overrides={override}",)
    again = site.doit("snapshot", overrides=words)
    assert again.returncode == 0, again.stderr
    assert ran(again.stdout) == ["snapshot"]
    assert "snapshot not written" in again.stderr and "backends.vllm.port" in again.stderr
    assert (site.registry / SNAPSHOT).read_bytes() == before


def test_an_environment_variable_the_layers_read_reruns_the_snapshot(site):
    curated = site.curated()
    curated[0]["backend_config"]["host"] = "${oc.env:PIPELINE_TEST_HOST,localhost}"
    site.write_curated(curated)
    assert site.doit().returncode == 0
    site.env["PIPELINE_TEST_HOST"] = "gpu-7"
    again = site.doit()
    assert ran(again.stdout) == ["snapshot"], again.stderr
    snapshot = {e["name"]: e for e in read_json(site.registry / SNAPSHOT)}
    assert snapshot["alpha"]["backend_config"]["host"] == "gpu-7"


def lock(site, name):
    result = subprocess.run(
        [str(CLI), "lock", name, "--set-expected", f"registry.dir={site.registry}"],
        capture_output=True,
        text=True,
        env=site.env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_a_lock_violation_fails_its_chain_and_names_it(site):
    assert site.doit().returncode == 0
    lock(site, "alpha")
    before = recorded(site)["alpha"]
    (site.models["alpha"] / SHARDS[1]).write_bytes(b"tampered")
    bump_mtime(site.models["beta_(Q4_K_M)"] / SHARDS[1])  # the neighbour's chain still runs
    failed = site.doit()
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr + failed.stdout
    lines = [line for line in failed.stderr.splitlines() if "verify:alpha" in line]
    assert lines and "version lock violated" in lines[0], failed.stderr
    assert "verify:beta_(Q4_K_M)" in ran(failed.stdout)
    assert recorded(site)["alpha"] == before  # the last good record survives
    # still failing next time: a failed task is never recorded as done
    assert site.doit().returncode != 0


def test_parallel_runs_lose_no_registry_write(tmp_path):
    names = tuple(f"model-{i}" for i in range(6))
    site = make_site(tmp_path, names)
    first = site.doit("-n", "2")
    assert first.returncode == 0, first.stderr
    assert recorded(site) == {n: aggregate_of(p) for n, p in site.models.items()}
    again = site.doit("-n", "2")
    assert again.returncode == 0 and ran(again.stdout) == [], again.stdout


def test_a_bad_override_is_one_line(site):
    bad = site.doit(overrides=("backends.vllm.nope=1",))
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0, bad.stderr
    assert bad.stderr.startswith("doit: error: config override") and "nope" in bad.stderr


def test_list_shows_every_task_and_info_says_why(site):
    listed = site.doit("list")
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
    assert set(ALL_TASKS) | {"refresh"} <= names
    assert all(len(line.split(None, 1)) == 2 for line in listed.stdout.splitlines())
    assert site.doit("hash:beta_(Q4_K_M)").returncode == 0
    info = site.doit("info", "hash:beta_(Q4_K_M)")
    assert info.returncode == 0 and "status     : up-to-date" in info.stdout, info.stderr
    bump_mtime(site.models["beta_(Q4_K_M)"] / SHARDS[0])
    info = site.doit("info", "hash:beta_(Q4_K_M)")
    assert info.returncode == 1  # doit's way of saying "would run"
    assert "status     : run" in info.stdout
    assert f"changed:\n    - {site.models['beta_(Q4_K_M)'] / SHARDS[0]}" in info.stdout


def test_one_models_chain_runs_by_name(site):
    one = site.doit("verify:beta_(Q4_K_M)")
    assert one.returncode == 0, one.stderr
    assert ran(one.stdout) == ["hash:beta_(Q4_K_M)", "verify:beta_(Q4_K_M)"]
    assert set(recorded(site)) == {"beta_(Q4_K_M)"}


def test_models_not_on_this_host_are_skipped_unless_strict_and_locked(site):
    curated = site.curated()
    curated.append(
        {**curated[0], "name": "elsewhere", "backend_config": {"model_path": "/nonexistent/m"}}
    )
    site.write_curated(curated)
    discovered = [{"name": "elsewhere", "version_lock": {"locked": True}}]
    site.write_discovered(discovered)
    relaxed = site.doit()
    assert relaxed.returncode == 0, relaxed.stderr
    assert not any("elsewhere" in t for t in ran(relaxed.stdout))
    strict = site.doit(overrides=("profile.strict_integrity=true",))
    assert strict.returncode != 0
    assert "verify:elsewhere" in strict.stderr and "locked but cannot be verified" in strict.stderr
