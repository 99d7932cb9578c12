"""One operation, three front doors: the CLI, the Hydra apps and doit agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from conftest import DISCOVERED, ROOT, SNAPSHOT, read_json, run_cli, write_json

PYTHON = sys.executable


def run(args, cwd):
    proc = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=120)
    return proc


def test_hydra_app_and_cli_give_the_same_list(demo_registry, tmp_path):
    cli = run_cli("list", "--role", "caption", f"registry.dir={demo_registry}")
    app = run(
        [PYTHON, "-m", "loader.apps", "list", "role=caption", f"registry.dir={demo_registry}"],
        cwd=tmp_path,
    )
    assert cli.returncode == 0 and app.returncode == 0, app.stderr
    assert json.loads(app.stdout) == json.loads(cli.stdout)
    assert {row["name"] for row in json.loads(cli.stdout)} == {
        "florence-2-large_(FP16)",
        "qwen2.5-vl-7b-instruct_(AWQ)",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # no outputs/, no logs


def test_hydra_app_takes_names_with_parentheses_and_prints_config(demo_registry, tmp_path):
    name = "qwen3_8b_(Q4_K_M)"
    app = run(
        [PYTHON, "-m", "loader.apps", "select", f"name='{name}'", f"registry.dir={demo_registry}"],
        cwd=tmp_path,
    )
    assert app.returncode == 0, app.stderr
    assert json.loads(app.stdout)["internal_model_id"] == "qwen3:8b"

    cfg = run(
        [PYTHON, "-m", "loader.apps", "select", "--cfg", "job", f"name='{name}'"], cwd=tmp_path
    )
    assert cfg.returncode == 0, cfg.stderr
    assert f"name: {name}" in cfg.stdout and "registry:" in cfg.stdout


def test_hydra_app_errors_are_one_line_with_the_exit_code(demo_registry, tmp_path):
    app = run(
        [PYTHON, "-m", "loader.apps", "select", "name=nope", f"registry.dir={demo_registry}"],
        cwd=tmp_path,
    )
    assert app.returncode == 1
    assert app.stderr.strip().count("\n") == 0 and "unknown model 'nope'" in app.stderr


def test_python_dash_m_loader_is_the_cli(demo_registry):
    module = subprocess.run(
        [PYTHON, "-m", "loader", "metrics", f"registry.dir={demo_registry}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert module.returncode == 0, module.stderr
    assert json.loads(module.stdout) == run_cli("metrics", f"registry.dir={demo_registry}").json()


def doit(tmp_path, registry, command, *extra):
    return subprocess.run(
        [
            PYTHON,
            "-m",
            "doit",
            command,
            "-f",
            str(ROOT / "dodo.py"),
            "--db-file",
            str(tmp_path / "doit.db"),
            *extra,
            f"overrides=registry.dir={registry}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=dict(os.environ),
    )


def test_doit_snapshot_task_runs_only_when_a_layer_changed(demo_registry, tmp_path):
    assert not (demo_registry / SNAPSHOT).exists()
    first = doit(tmp_path, demo_registry, "run", "snapshot")
    assert first.returncode == 0, first.stderr
    assert ".  snapshot" in first.stdout
    assert (demo_registry / SNAPSHOT).exists()

    again = doit(tmp_path, demo_registry, "run", "snapshot")
    assert again.returncode == 0 and "-- snapshot" in again.stdout  # up to date

    entries = read_json(demo_registry / DISCOVERED)
    entries[0]["performance"]["rolling_samples"] = 3
    time.sleep(0.01)
    write_json(demo_registry / DISCOVERED, entries)
    changed = doit(tmp_path, demo_registry, "run", "snapshot")
    assert changed.returncode == 0 and ".  snapshot" in changed.stdout
    snapshot = {e["name"]: e for e in read_json(demo_registry / SNAPSHOT)}
    assert snapshot[entries[0]["name"]]["performance"]["rolling_samples"] == 3


def test_doit_lists_the_task_with_its_docstring(tmp_path, demo_registry):
    listed = doit(tmp_path, demo_registry, "list")
    assert listed.returncode == 0, listed.stderr
    assert "snapshot" in listed.stdout and "Regenerate the merged snapshot" in listed.stdout
