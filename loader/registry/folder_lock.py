"""The registry folder's lock: one writer at a time, across processes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from loader.errors import RegistryWriteError
from loader.file_locks import LockTimeout, file_lock

LOCK_NAME = ".model_registry.lock"
LOCK_TIMEOUT_S = 60.0


class RegistryLockBusy(RegistryWriteError):
    """The registry lock is held by another process and the caller would not wait."""


@contextlib.contextmanager
def registry_lock(folder: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the registry folder's inter-process lock (re-entrant in a thread).

    ``timeout=0`` tries once: a reader that must never wait on a writer gets
    ``RegistryLockBusy`` at once.
    """
    path = folder / LOCK_NAME
    try:
        with file_lock(path, timeout):
            yield
    except LockTimeout:
        if timeout <= 0:
            raise RegistryLockBusy(f"{path}: busy (another process is writing)") from None
        raise RegistryWriteError(f"{path}: lock not acquired within {timeout:.0f}s") from None
    except OSError as exc:
        raise RegistryWriteError(f"{path}: cannot lock: {exc.strerror or exc}") from None
