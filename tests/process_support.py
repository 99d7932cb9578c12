"""Finding and ending the processes a test run started, by an environment
marker they inherit (``/proc/PID/environ`` holds a process's start-up environment)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")


def _environ_has(pid: int, marker: bytes) -> bool:
    try:
        return marker in (PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def marked_processes(key: str, value: str) -> list[int]:
    """Live processes (zombies aside) started with ``key=value`` in their environment."""
    marker = f"{key}={value}".encode()
    return sorted(
        int(entry.name)
        for entry in os.scandir(PROC)
        if entry.name.isdigit()
        and int(entry.name) != os.getpid()
        and _environ_has(int(entry.name), marker)
        and _alive(int(entry.name))
    )


def command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def kill_marked(key: str, value: str, wait: float = 10.0) -> list[str]:
    """SIGKILL every marked process (its whole group when it leads one that is
    not ours); returns the command lines of those that were still running."""
    pids = marked_processes(key, value)
    found = [f"{pid}: {command_line(pid)}" for pid in pids]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            pgid = os.getpgid(pid)
            if pgid == pid and pgid != os.getpgrp():
                os.killpg(pgid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and marked_processes(key, value):
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        time.sleep(0.05)
    return found


def wait_until_none_marked(key: str, value: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = marked_processes(key, value)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)
