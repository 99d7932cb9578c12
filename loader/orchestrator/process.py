"""Processes on Linux: who a pid is, its process group, stopping it, ports.

A pid alone proves nothing: once a process exits, the kernel may give its
number to an unrelated program. A process is identified by its pid plus its
start time (``/proc/PID/stat`` field 22, clock ticks after boot) and the boot
it belongs to; nothing is signalled unless both match.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import OrchestrationError

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str  # R, S, D, Z ...
    pgrp: int
    session: int
    start_ticks: int

    @property
    def running(self) -> bool:
        return self.state not in ("Z", "X")


def proc_stat(pid: int) -> ProcStat | None:
    """``/proc/PID/stat``, or None when there is no such process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return ProcStat(
        pid=pid,
        state=fields[0],
        pgrp=int(fields[2]),
        session=int(fields[3]),
        start_ticks=int(fields[19]),
    )


def boot_id() -> str | None:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def command_line(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def describe(pid: int, width: int = 80) -> str:
    """``pid 123 (python -m http.server)`` for messages."""
    words = " ".join(command_line(pid))
    if len(words) > width:
        words = words[: width - 3] + "..."
    return f"pid {pid} ({words})" if words else f"pid {pid}"


def group_members(pgid: int) -> list[ProcStat]:
    """Live (not zombie) processes of process group ``pgid``."""
    members = []
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        stat = proc_stat(int(entry.name))
        if stat is not None and stat.pgrp == pgid and stat.running:
            members.append(stat)
    return members


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child, so it is no zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_group(pgid: int, timeout: float) -> bool:
    """SIGTERM process group ``pgid``, wait up to ``timeout`` s for all of it
    to exit, then SIGKILL what is left. Returns False if SIGKILL was needed.

    The caller has checked that the group is ours: the kernel keeps a group's
    number reserved while any member lives, so it cannot name another group.
    """
    if _wait_group_gone(pgid, 0.0):
        return True
    _signal_group(pgid, signal.SIGTERM)
    if _wait_group_gone(pgid, timeout):
        return True
    _signal_group(pgid, signal.SIGKILL)
    _wait_group_gone(pgid, 10.0)
    return False


def kill_group(pgid: int) -> None:
    """SIGKILL a group we have just started and wait for it to be gone."""
    _signal_group(pgid, signal.SIGKILL)
    _wait_group_gone(pgid, 10.0)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        reap(pgid)
        if not group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on ``port`` (a bind on it fails)."""
    bind_host = "" if host in ("0.0.0.0", "") else host
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As servers do, so sockets lingering in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind_host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise OrchestrationError(
                f"orchestrator.host {host!r}: cannot bind port {port} there: {exc.strerror or exc}"
            ) from None
    return False


def lock_holders(path: Path) -> list[int]:
    """Pids holding an flock on ``path``, from ``/proc/locks`` (empty if unknown)."""
    try:
        inode = path.stat().st_ino
        lines = (PROC / "locks").read_text().splitlines()
    except OSError:
        return []
    holders = []
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; blocked waiters have "->".
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        pid, device_inode = fields[4], fields[5]
        if device_inode.rsplit(":", 1)[-1] == str(inode) and pid.isdigit():
            holders.append(int(pid))
    return holders
