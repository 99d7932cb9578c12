"""Inter-process file locks.

On POSIX an ``flock`` on a lock file, re-entrant within a thread. Importing
``filelock`` cost ~13 ms, most of a re-verify's writing overhead, so it is
used only where ``fcntl`` does not exist (Windows).
"""

from __future__ import annotations

import contextlib
import os
import time
from _thread import _local as thread_local  # threading.local, without importing threading
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]  # None marks "no fcntl": filelock instead


class LockTimeout(TimeoutError):
    """The lock was held by another process for the whole timeout."""


_held = thread_local()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], timeout: float) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing).

    Raises ``LockTimeout`` after ``timeout`` seconds, ``OSError`` when the
    lock file cannot be opened.
    """
    key = os.path.abspath(path)
    depth: dict[str, int] = _held.__dict__.setdefault("depth", {})
    if depth.get(key):
        depth[key] += 1  # this thread holds it already
        try:
            yield
        finally:
            depth[key] -= 1
        return
    with _acquire(key, timeout):
        depth[key] = 1
        try:
            yield
        finally:
            depth[key] = 0


@contextlib.contextmanager
def _acquire(path: str, timeout: float) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        from filelock import FileLock, Timeout

        try:
            with FileLock(path, timeout=timeout):
                yield
        except Timeout:
            raise LockTimeout(path) from None
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(path) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
