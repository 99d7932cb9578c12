"""A cgroup (v2) for one server, where one can be made; else the reason why not.

A cgroup holds every process started inside it, whatever it does to its
session, parent or environment, so it is the surest record of a server's
tree. It is made as a child of the loader's own cgroup, which must be
writable: root, or a cgroup systemd delegates to the user (a desktop
terminal's ``app-….scope`` usually is; a login session's ``session-N.scope``
is not). Where none can be made, the server is tracked without one (see
``tree``) and the state says why.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

PROC = Path("/proc")
PREFIX = "imageworks-vllm-"


def _cgroup2_mounts() -> list[tuple[str, str]]:
    """``(root, mount point)`` of each cgroup v2 mount."""
    try:
        lines = (PROC / "self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        # "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw"
        before, _, after = line.partition(" - ")
        fields = before.split()
        if after.split()[:1] == ["cgroup2"] and len(fields) >= 5:
            found.append((fields[3], fields[4]))
    return found


def is_cgroup(path: Path) -> bool:
    """Whether ``path`` is a cgroup v2 folder made by the orchestrator (the
    state file is outside data: a path elsewhere must not list pids to stop)."""
    if not path.name.startswith(PREFIX):
        return False
    return any(path.parent.is_relative_to(mount) for _, mount in _cgroup2_mounts())


def own_cgroup() -> tuple[Path | None, str]:
    """The folder of this process's cgroup v2, or None and why not."""
    try:
        lines = (PROC / "self/cgroup").read_text().splitlines()
    except OSError as exc:
        return None, f"cannot read /proc/self/cgroup: {exc.strerror or exc}"
    relative = next((line[3:] for line in lines if line.startswith("0::")), None)
    if relative is None:
        return None, "this process is in no cgroup v2 hierarchy"
    for root, mount in _cgroup2_mounts():
        inside = os.path.relpath(relative, root)
        if not inside.startswith(".."):
            return Path(os.path.normpath(Path(mount) / inside)), ""
    return None, "no cgroup v2 hierarchy is mounted (cgroup v1 alone)"


def create(token: str) -> tuple[Path | None, str]:
    """A new, empty cgroup for one server, or None and why not."""
    parent, why = own_cgroup()
    if parent is None:
        return None, why
    if not os.access(parent / "cgroup.procs", os.W_OK):
        return None, (
            f"{parent} is not writable (cgroups are writable for root, or where "
            "systemd delegates them)"
        )
    remove_stale(parent)
    path = parent / name_for(token)
    try:
        path.mkdir()
    except OSError as exc:
        return None, f"{path}: cannot create: {exc.strerror or exc}"
    return path, ""


def join(path: Path, pid: int) -> str:
    """Move ``pid`` into ``path``; "" on success, else why not (and ``path`` is removed)."""
    try:
        (path / "cgroup.procs").write_text(str(pid))
    except OSError as exc:
        remove(path)
        return f"{path}: cannot move pid {pid} into it: {exc.strerror or exc}"
    return ""


def members(path: Path) -> list[int]:
    """Pids in ``path`` and the cgroups below it (empty when it is gone)."""
    pids: list[int] = []
    for folder, _dirs, files in os.walk(path):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError, ValueError):
                text = Path(folder, "cgroup.procs").read_text()
                pids += [int(word) for word in text.split()]
    return pids


def kill(path: Path) -> bool:
    """SIGKILL everything in ``path`` at once (``cgroup.kill``, Linux 5.14+)."""
    try:
        (path / "cgroup.kill").write_text("1")
    except OSError:
        return False
    return True


def remove(path: Path) -> None:
    """Remove ``path`` once it is empty (a cgroup with processes refuses)."""
    for folder, _dirs, _files in sorted(os.walk(path), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def remove_stale(parent: Path, older_than_s: float = 60.0) -> None:
    """Remove the empty cgroups of servers that have exited. ``rmdir`` fails
    for one that still holds a process; one made in the last minute may be a
    start in progress elsewhere, not yet joined, and is left alone."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            if entry.name.startswith(PREFIX) and entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    if time.time() - entry.stat(follow_symlinks=False).st_mtime > older_than_s:
                        os.rmdir(entry.path)


def name_for(token: str) -> str:
    return f"{PREFIX}{token[:16]}"
