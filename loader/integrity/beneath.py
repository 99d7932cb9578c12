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
import threading

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


class Root:
    """A model root opened once; files beneath it are opened from its
    descriptor. Folder descriptors are opened once (without following links)
    and reused, so each file costs one ``openat``. Thread-safe; ``close()``
    releases them all."""

    def __init__(self, root_real: str) -> None:
        self.path = root_real
        self._folders: dict[tuple[str, ...], int] = {(): os.open(root_real, _DIR_FLAGS)}
        self._mutex = threading.RLock()

    def open_file(self, real: str) -> tuple[int, os.stat_result]:
        """Open ``real`` (a path inside the root with no links on it when it was
        checked). Raises ``LinkOnPath`` when a component is now a symlink or
        not a folder, ``NotRegularFile`` for a FIFO, device, socket or folder,
        other ``OSError`` as the system reports them."""
        prefix = self.path.rstrip(os.sep) + os.sep
        if not real.startswith(prefix):
            raise LinkOnPath(errno.EINVAL, f"{real} is not inside {self.path}")
        parts = tuple(p for p in real[len(prefix) :].split(os.sep) if p not in ("", "."))
        if not parts or ".." in parts:
            raise LinkOnPath(errno.EINVAL, f"not a plain path inside the root: {real!r}")
        return _regular(_step(parts[-1], _FILE_FLAGS, self._folder(parts[:-1])))

    def _folder(self, parts: tuple[str, ...]) -> int:
        with self._mutex:  # re-entrant: a folder's parent is opened first
            fd = self._folders.get(parts)
            if fd is None:
                fd = _step(parts[-1], _DIR_FLAGS, self._folder(parts[:-1]))
                self._folders[parts] = fd
            return fd

    def close(self) -> None:
        with self._mutex:
            for fd in self._folders.values():
                os.close(fd)
            self._folders.clear()


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
