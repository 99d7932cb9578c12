"""Processes on Linux, read from ``/proc``: who a pid is, its parent, its
environment, signalling it without a pid race, and who listens on a port.

A pid alone proves nothing: once a process exits, the kernel may give its
number to an unrelated program. A process is identified by its pid plus its
start time (``/proc/PID/stat`` field 22, clock ticks after boot) and the boot
it belongs to; nothing is signalled unless both match (see ``tree``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from loader.errors import OrchestrationError

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str  # R, S, D, Z ...
    ppid: int
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
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        session=int(fields[3]),
        start_ticks=int(fields[19]),
    )


def all_processes() -> list[ProcStat]:
    """Every live (not zombie) process, from one scan of ``/proc``."""
    found = []
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None and stat.running:
                found.append(stat)
    return found


def start_epoch(start_ticks: int) -> float | None:
    """A start time in clock ticks after boot, as epoch seconds (to within a
    second: the boot time is recorded in whole seconds)."""
    try:
        for line in (PROC / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    return None


def environ_has(pid: int, entry: bytes) -> bool:
    """Whether ``KEY=VALUE`` ``entry`` is in the environment ``pid`` started with."""
    try:
        with open(PROC / str(pid) / "environ", "rb") as handle:
            data = handle.read(1 << 20)  # environments are small; never read more
    except OSError:
        return False
    return entry in data.split(b"\0")


def signal_exact(pid: int, start_ticks: int, signum: int) -> bool:
    """Send ``signum`` to ``pid`` only if it is still the process that started
    at ``start_ticks``. Through a pidfd where the kernel has them, so the
    number cannot be reused between the check and the signal. Returns whether
    the signal was sent."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):
        fd = None  # no pidfds (Linux < 5.3): the check and the kill stay close together
    try:
        stat = proc_stat(pid)
        if stat is None or stat.start_ticks != start_ticks or not stat.running:
            return False
        if fd is None:
            os.kill(pid, signum)
        else:
            signal.pidfd_send_signal(fd, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if fd is not None:
            os.close(fd)


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
    # outside text in a one-line message: control characters are shown escaped
    words = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", words)
    if len(words) > width:
        words = words[: width - 3] + "..."
    return f"pid {pid} ({words})" if words else f"pid {pid}"


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child, so it is no zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


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


def listening_inodes(port: int) -> set[int]:
    """Inodes of the sockets listening on TCP ``port`` at any address (this
    network namespace's ``/proc/net/tcp`` and ``tcp6``)."""
    inodes = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            # "0: 0100007F:5DC1 00000000:0000 0A ... uid timeout inode ..."; 0A is LISTEN.
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":
                with contextlib.suppress(ValueError):
                    if int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(int(fields[9]))
    return inodes


def port_holders(port: int) -> list[int]:
    """Pids with a listening socket on ``port`` open (from their fds; another
    user's processes cannot be seen unless we are root)."""
    targets = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    if not targets:
        return []
    holders = []
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            fds = list(os.scandir(f"{entry.path}/fd"))
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd.path) in targets:
                    holders.append(int(entry.name))
                    break
            except OSError:
                continue
    return sorted(holders)


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
