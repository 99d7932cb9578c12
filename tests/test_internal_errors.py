"""An exception the loader did not raise on purpose is a bug: every front door
says so in one line, ``internal error: ...``, and exits 3 (issue 16), with no
traceback unless ``IMAGEWORKS_LOADER_DEBUG=1`` asks for one.

The bug is planted by replacing one operation's function in ``OPERATIONS``
(in this process, or in a real subprocess before its front door starts).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import run_cli_in_process

from loader.errors import EXIT_INTERNAL

# Replaces `list` and `snapshot` with functions that fail the way a bug does.
PLANT = textwrap.dedent(
    """
    from loader.operations import OPERATIONS

    def boom(registry, **arguments):
        return {}["planted bug"]

    for _name in ("list", "snapshot"):
        OPERATIONS[_name] = OPERATIONS[_name]._replace(run=boom)
    """
)
CLI_DOOR = PLANT + "from loader.frontdoors.cli import console_main\nconsole_main()\n"
APP_DOOR = PLANT + (
    "import sys\nfrom loader.frontdoors.apps import main\nraise SystemExit(main(sys.argv[1:]))\n"
)


@pytest.fixture
def planted(monkeypatch):
    from loader.operations import OPERATIONS

    def boom(registry, **arguments):
        return {}["planted bug"]

    for name in ("list", "snapshot"):
        monkeypatch.setitem(OPERATIONS, name, OPERATIONS[name]._replace(run=boom))


def assert_one_internal_error(stderr: str, prefix: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"{prefix}: internal error: KeyError: 'planted bug'"), stderr
    assert "please report it" in lines[0]
    assert "Traceback" not in stderr


def test_the_cli_in_process_exits_3_in_one_line(planted, demo_registry):
    result = run_cli_in_process("list", f"registry.dir={demo_registry}")
    assert result.returncode == EXIT_INTERNAL, result.stderr
    assert_one_internal_error(result.stderr, "imageworks-loader")
    assert result.stdout == ""


def test_the_debug_switch_adds_the_traceback(planted, demo_registry):
    env = {"IMAGEWORKS_LOADER_DEBUG": "1"}
    result = run_cli_in_process("list", f"registry.dir={demo_registry}", env=env)
    assert result.returncode == EXIT_INTERNAL
    assert "Traceback" in result.stderr and "planted bug" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("imageworks-loader: internal error:")


def test_a_usage_error_still_exits_1(planted, demo_registry):
    result = run_cli_in_process("list", "--no-such-flag", f"registry.dir={demo_registry}")
    assert result.returncode == 1
    assert "internal error" not in result.stderr


def run_python(code: str, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_the_cli_as_a_real_process_exits_3_in_one_line(demo_registry, tmp_path):
    proc = run_python(CLI_DOOR, "list", f"registry.dir={demo_registry}", cwd=tmp_path)
    assert proc.returncode == EXIT_INTERNAL, proc.stderr
    assert_one_internal_error(proc.stderr, "imageworks-loader")


def test_the_hydra_app_exits_3_in_one_line(demo_registry, tmp_path):
    proc = run_python(APP_DOOR, "list", f"registry.dir={demo_registry}", cwd=tmp_path)
    assert proc.returncode == EXIT_INTERNAL, proc.stderr
    assert_one_internal_error(proc.stderr, "imageworks-loader list")


def test_a_hydra_sweep_reports_each_job_in_one_line(demo_registry, tmp_path):
    proc = run_python(
        APP_DOOR, "list", "role=caption,chat", f"registry.dir={demo_registry}", "-m", cwd=tmp_path
    )
    assert proc.returncode == EXIT_INTERNAL, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr
    prefix = "imageworks-loader list: internal error: KeyError"
    assert all(line.startswith(prefix) for line in lines)
    assert "Traceback" not in proc.stderr


def test_a_doit_task_fails_in_one_line_with_exit_3(planted, demo_registry):
    # `refresh` runs the doit graph in-process; its snapshot task calls the
    # planted operation through the same invoke().
    result = run_cli_in_process("refresh", f"registry.dir={demo_registry}")
    assert result.returncode == EXIT_INTERNAL, result.stderr
    failures = [line for line in result.stderr.splitlines() if "internal error" in line]
    assert failures == [
        "imageworks-loader refresh: snapshot: internal error: KeyError: 'planted bug' "
        "(a bug in imageworks-loader; please report it)"
    ], result.stderr
    assert "Traceback" not in result.stderr
