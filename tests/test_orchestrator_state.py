"""The state file is outside data: hostile shapes of it end in one line and
exit 1, quickly and in bounded memory, with no file changed (issue 18.10)."""

from __future__ import annotations

import json
import os
import resource
import subprocess

import pytest
from conftest import CLI
from orchestrator_support import FLORENCE, orchestra_world

# The commands run under this address-space cap: a reader that loads a
# /dev/zero or a 2 GB file whole fails here instead of taking the machine.
MEMORY_CAP = 1 << 30


@pytest.fixture
def orchestra(tmp_path, monkeypatch):
    yield from orchestra_world(tmp_path, monkeypatch)


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_capped(orchestra, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), args[0], *orchestra.overrides, *args[1:]],
        capture_output=True,
        text=True,
        timeout=30,  # a FIFO would otherwise hang the reader for ever
        preexec_fn=_capped,
    )


def _deep(path):
    path.write_text("[" * 100_000 + "]" * 100_000)


def _fifo(path):
    os.mkfifo(path)


def _dev_zero(path):
    path.symlink_to("/dev/zero")


def _sparse(path):
    with open(path, "wb") as handle:
        handle.truncate(2 * 1024**3)


def _not_json(path):
    path.write_text('{"logical_name": "m", ')


def _nan(path):
    path.write_text(
        '{"logical_name": "m", "served_model_id": "m", "port": 24001, "pid": 12, "started_at": NaN}'
    )


def _wrong_type(path):
    state = {"logical_name": "m", "served_model_id": "m", "port": "24001x", "pid": 12}
    path.write_text(json.dumps({**state, "started_at": 1.0}))


def _folder(path):
    path.mkdir()


HOSTILE = {
    "deep": (_deep, "nested more than 64 levels"),
    "fifo": (_fifo, "not a regular file"),
    "dev-zero": (_dev_zero, "not a regular file"),
    "sparse-2GB": (_sparse, "larger than"),
    "not-json": (_not_json, "invalid JSON"),
    "nan": (_nan, "started_at: NaN is not a finite number"),
    "wrong-type": (_wrong_type, "port: not an integer"),
    "folder": (_folder, "is a folder"),
}
COMMANDS = [("current-model",), ("activate-model", "--stop"), ("activate-model", FLORENCE)]


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("command", COMMANDS, ids=["current", "stop", "activate"])
def test_a_hostile_state_file_is_one_line_and_exit_1(orchestra, kind, command):
    make, message = HOSTILE[kind]
    orchestra.state_file.parent.mkdir(parents=True)
    make(orchestra.state_file)
    before = os.lstat(orchestra.state_file)
    proc = run_capped(orchestra, *command)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(orchestra.state_file) in lines[0] and message in lines[0], lines[0]
    assert proc.stdout == ""
    after = os.lstat(orchestra.state_file)
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    assert orchestra.live() == []  # nothing was started


def test_a_state_the_proxy_counts_as_absent_is_still_absent(orchestra):
    # The chat proxy's own rule: an empty name, or a pid or port <= 0, is no state.
    orchestra.write_state(pid=0)
    proc = run_capped(orchestra, "current-model")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "null"
    assert "not a usable state" in proc.stderr
