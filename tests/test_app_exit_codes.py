"""Exit codes of the Hydra apps (issue 17 item 9): usage errors exit 1 (2 is
reserved for integrity failures), help exits 0, and ``-m`` may come after the
overrides as Hydra's own examples write it."""

from __future__ import annotations

import subprocess
import sys

from conftest import json_stream

PYTHON = sys.executable


def app(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "loader.apps", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_multirun_after_the_overrides_sweeps(demo_registry, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    proc = app("list", "role=caption,chat", f"registry.dir={demo_registry}", "-m", cwd=work)
    assert proc.returncode == 0, proc.stderr
    jobs = json_stream(proc.stdout)
    assert len(jobs) == 2 and all(isinstance(job, list) for job in jobs)
    assert list(work.iterdir()) == []  # no outputs/ left behind


def test_a_flag_with_a_value_after_the_overrides_works_too(demo_registry, tmp_path):
    proc = app("list", f"registry.dir={demo_registry}", "--cfg", "job", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "registry:" in proc.stdout


def test_help_exits_0():
    proc = app("--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m loader.apps OPERATION" in proc.stdout
    assert app("list", "--help").returncode == 0


def test_usage_errors_exit_1_in_one_line(demo_registry, tmp_path):
    for args in (
        (),
        ("no-such-operation",),
        ("list", "--no-such-flag"),
        ("list", "role=caption", "--no-such-flag", "-m"),
        ("list", "--cfg", "nonsense"),
    ):
        proc = app(*args, f"registry.dir={demo_registry}", cwd=tmp_path) if args else app()
        assert proc.returncode == 1, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
