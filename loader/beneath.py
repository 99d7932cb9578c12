"""Opening a file beneath a root folder without following any link.

A path checked with ``realpath`` can change before it is opened: a parent
folder swapped for a symlink leads outside the root, a file swapped for a
FIFO blocks the reader. So every component is opened relative to the
previous one's descriptor with ``O_NOFOLLOW`` (``openat`` one step at a
time), the file without blocking, and the opened descriptor is checked with
``fstat``, never the path.
"""

from __future__ import annotations

import errno
import os
import stat

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC

# Where openat is missing (Windows), fall back to checked paths.
SUPPORTED = os.open in os.supports_dir_fd and bool(_NOFOLLOW)


class LinkOnPath(OSError):
    """A component of the path is (now) a symlink or not a folder."""


class NotRegularFile(OSError):
    """What was opened is a FIFO, device, socket or folder."""


def open_root(root_real: str) -> int:
    """A descriptor for the (already resolved) root folder."""
    return os.open(root_real, _DIR_FLAGS)


def open_file_beneath(root_fd: int, rel: str) -> tuple[int, os.stat_result]:
    """Open ``rel`` (no links expected on it) under ``root_fd``.

    Returns the descriptor and its ``fstat``. Raises ``LinkOnPath`` when a
    component is a symlink, ``NotRegularFile`` when the target is not a
    regular file, other ``OSError`` as the system reports them.
    """
    parts = [p for p in rel.split(os.sep) if p not in ("", ".")]
    if not parts or ".." in parts:
        raise LinkOnPath(errno.EINVAL, f"not a plain relative path: {rel!r}")
    opened: list[int] = []
    fd = root_fd
    try:
        for part in parts[:-1]:
            fd = _step(part, _DIR_FLAGS, fd)
            opened.append(fd)
        file_fd = _step(parts[-1], _FILE_FLAGS, fd)
    finally:
        for folder_fd in opened:
            os.close(folder_fd)
    return _regular(file_fd)


def open_checked_path(path: str) -> tuple[int, os.stat_result]:
    """The fallback without ``openat``: only the last component is guarded."""
    return _regular(os.open(path, _FILE_FLAGS))


def _regular(fd: int) -> tuple[int, os.stat_result]:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, "not a regular file")
    return fd, st


def _step(part: str, flags: int, dir_fd: int) -> int:
    try:
        return os.open(part, flags, dir_fd=dir_fd)
    except OSError as exc:
        # ELOOP: a symlink under O_NOFOLLOW; ENOTDIR: a link or file where a folder was.
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise LinkOnPath(exc.errno, f"{part} is a symlink or not a folder") from None
        raise


def same_content_stat(a: os.stat_result, b: os.stat_result) -> bool:
    """Same file, same size, not written since: what the hash cache keys on."""
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns, a.st_ctime_ns) == (
        b.st_dev,
        b.st_ino,
        b.st_size,
        b.st_mtime_ns,
        b.st_ctime_ns,
    )
