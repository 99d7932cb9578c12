"""For a person at the terminal (issue 19): tables, a failed verify that stays
shown, one field explained, where a config value came from, and usage words."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import run_cli
from test_locks import SHARD, make_model, make_registry, tamper_one_byte, vllm_entry


def cli(reg: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli(*args, f"registry.dir={reg}", env={"HOSTNAME": "box", **(env or {})})


def test_a_failed_verify_is_shown_by_list_and_metrics_until_one_passes(tmp_path):
    model = make_model(tmp_path / "model")
    reg = make_registry(tmp_path / "reg", [vllm_entry("m_(A)", model)])

    def verdict() -> tuple[str, str, str]:
        listed = {r["name"]: r for r in json.loads(cli(reg, "list").stdout)}
        summary = {r["name"]: r for r in json.loads(cli(reg, "metrics").stdout)}
        one = json.loads(cli(reg, "metrics", "m_(A)").stdout)
        return listed["m_(A)"]["verify"], summary["m_(A)"]["verify"], one["verify"]["status"]

    assert verdict() == ("never",) * 3
    assert cli(reg, "lock", "m_(A)", "--set-expected").returncode == 0
    assert verdict() == ("ok",) * 3
    tamper_one_byte(model / SHARD)
    assert cli(reg, "verify", "m_(A)").returncode == 2
    assert verdict() == ("violated",) * 3
    table = cli(reg, "list", "--format", "table").stdout
    assert "violated" in table.splitlines()[1]
    tamper_one_byte(model / SHARD)  # put back
    assert cli(reg, "verify", "m_(A)").returncode == 0
    assert verdict() == ("ok",) * 3


def test_list_metrics_and_current_model_as_tables(tmp_path):
    model = make_model(tmp_path / "model")
    reg = make_registry(
        tmp_path / "reg",
        [
            vllm_entry("m_(A)", model, download_size_bytes=5 * 1024**3),
            {"name": "v_(B)", "backend": "ollama", "capabilities": {"vision": True}},
        ],
    )
    assert cli(reg, "verify", "m_(A)").returncode == 0
    result = cli(reg, "list", "--format", "table")
    assert result.returncode == 0, result.stderr
    header, first, second = result.stdout.splitlines()
    assert header.split() == ["NAME", "BACKEND", "SIZE", "LOCKED", "VERIFY", "PROBE", "SERVED"]
    assert first.split()[:5] == ["m_(A)", "vllm", "5.0G", "no", "ok"]
    assert re.fullmatch(r"\d+[smhd]", first.split()[5])  # the verify's age
    assert first.split()[-1] == "-"  # no vision: no probe column
    assert second.split() == ["v_(B)", "ollama", "-", "no", "never", "never"]
    # the column starts line up
    assert header.index("VERIFY") == first.index("ok")

    metrics = cli(reg, "metrics", "--format", "table")
    assert metrics.returncode == 0 and metrics.stdout.splitlines()[0].startswith("NAME")
    current = cli(
        reg, "current-model", "--format", "table", f"orchestrator.state_file={tmp_path}/s"
    )
    assert (
        current.returncode == 0 and current.stdout == "no model is served (no vLLM server runs)\n"
    )
    # JSON stays the default
    assert json.loads(cli(reg, "list").stdout)[0]["name"] == "m_(A)"


def test_explain_one_field_and_where_a_config_value_came_from(tmp_path, demo_registry):
    name = "qwen3_8b_(Q4_K_M)"
    one = cli(demo_registry, "explain", name, "--field", "backend")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == {
        "name": name,
        "field": "backend",
        "value": "ollama",
        "source": "curated",
    }
    nested = json.loads(cli(demo_registry, "explain", name, "--field", "backend_config").stdout)
    assert {r["field"] for r in nested["fields"]} >= {"backend_config.port"}
    wrong = cli(demo_registry, "explain", name, "--field", "bakend")
    assert wrong.returncode == 1 and "did you mean 'backend'" in wrong.stderr

    port = json.loads(cli(demo_registry, "explain", "--config", "backends.vllm.port").stdout)
    assert port == {"key": "backends.vllm.port", "value": 24001, "source": port["source"]}
    assert port["source"].endswith("conf/backends/default.yaml")
    moved = json.loads(
        cli(
            demo_registry, "explain", "--config", "backends.vllm.port", "backends.vllm.port=8001"
        ).stdout
    )
    assert moved["value"] == 8001 and moved["source"] == "override"
    assert moved["override"] == "backends.vllm.port=8001"
    ci = json.loads(
        cli(demo_registry, "explain", "--config", "profile.progress", "profile=ci").stdout
    )
    assert ci["value"] is False and ci["source"].endswith("conf/profile/ci.yaml")
    root = cli(
        demo_registry,
        "explain",
        "--config",
        "paths.models",
        env={"IMAGEWORKS_MODEL_ROOT": "/data/w"},
    )
    shown = json.loads(root.stdout)
    assert shown["value"] == "/data/w"
    assert shown["source"].endswith(
        "conf/paths/default.yaml (environment variable IMAGEWORKS_MODEL_ROOT)"
    )
    assert cli(demo_registry, "explain", "--config", "nope.x").returncode == 1


def test_no_command_prints_the_help_and_import_dir_asks_for_folders(tmp_path, demo_registry):
    bare = run_cli()
    assert bare.returncode == 0 and bare.stdout.startswith("usage: imageworks-loader")
    assert "COMMAND" in bare.stdout and bare.stderr == ""
    empty = cli(demo_registry, "import-dir")
    assert empty.returncode == 1
    assert "give one or more model folders" in empty.stderr
    assert len(empty.stderr.strip().splitlines()) == 1


def test_the_documented_error_lines_are_what_the_program_prints(demo_registry):
    """docs/registry.md's unknown-command lines ("…" stands for the rest)."""
    import re as _re

    from conftest import ROOT

    page = (ROOT / "docs" / "registry.md").read_text("utf-8")
    for word in ("bogus", "lsit"):
        [documented] = [line for line in page.splitlines() if f"unknown command '{word}'" in line]
        printed = run_cli(word).stderr.strip()
        pattern = ".*".join(_re.escape(part) for part in documented.split("…"))
        assert _re.fullmatch(pattern, printed), (documented, printed)
    # docs/api.md no longer says OrchestrationError is never raised
    assert "nothing raises it" not in (ROOT / "docs" / "api.md").read_text("utf-8")


def test_the_hydra_app_explains_a_config_key_with_its_override(demo_registry, tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loader.apps",
            "explain",
            "config_key=backends.vllm.port",
            "backends.vllm.port=8001",
            f"registry.dir={demo_registry}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["source"] == "override" and shown["override"] == "backends.vllm.port=8001"


def test_a_violation_that_cannot_be_recorded_still_exits_2(tmp_path):
    from test_locks import DISCOVERED

    model = make_model(tmp_path / "model")
    reg = make_registry(tmp_path / "reg", [vllm_entry("m_(A)", model)])
    assert cli(reg, "lock", "m_(A)", "--set-expected").returncode == 0
    tamper_one_byte(model / SHARD)
    # the discovered layer as a symlink: every write to it is refused
    real = tmp_path / "elsewhere.json"
    (reg / DISCOVERED).rename(real)
    (reg / DISCOVERED).symlink_to(real)
    result = cli(reg, "verify", "m_(A)")
    assert result.returncode == 2, result.stderr
    assert "version lock violated" in result.stderr
    assert "the violation is not recorded" in result.stderr
