"""Reading and writing the layer files: strict reads, atomic locked writes.

Writes go to a temp file in the same folder, are fsynced and renamed over the
target, so nothing is ever half-written. Reading strictly lives in
:mod:`loader.registry.layer_reading` and the folder lock in
:mod:`loader.registry.folder_lock`; this module is the documented path for
all of their names.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
import threading
from collections.abc import Iterable
from pathlib import Path

from loader.errors import RegistryWriteError
from loader.registry.folder_lock import LOCK_NAME, LOCK_TIMEOUT_S, RegistryLockBusy, registry_lock
from loader.registry.layer_reading import (
    DEFAULT_MAX_LAYER_BYTES,
    FileTooLarge,
    JsonStyle,
    Layer,
    NotARegularFile,
    layer_from_bytes,
    parse_layer,
    read_layer_bytes,
    read_regular_file,
)

__all__ = [
    "DEFAULT_MAX_LAYER_BYTES",
    "LOCK_NAME",
    "LOCK_TIMEOUT_S",
    "FileTooLarge",
    "JsonStyle",
    "Layer",
    "NotARegularFile",
    "RegistryLockBusy",
    "atomic_write_bytes",
    "file_holds",
    "host_tag",
    "layer_from_bytes",
    "parse_layer",
    "read_layer_bytes",
    "read_regular_file",
    "registry_lock",
    "remove_dead_temps",
    "temp_path",
    "write_if_changed",
]


def host_tag() -> str:
    """This host's name as it goes into temp file names (no path separators)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def temp_path(path: Path) -> Path:
    """Where a write of ``path`` stages its bytes: beside it, named for this
    host, process and thread, so a writer that died can be told apart from a
    live one, and only on the host whose process ids those are."""
    return path.with_name(f".{path.name}.{host_tag()}.{os.getpid()}.{threading.get_ident()}.tmp")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


# Temp files written before host names were added: ``.NAME.PID.TID.tmp``.
# Their host is unknown, so only old ones go (no write takes an hour).
_UNKNOWN_HOST_GRACE_S = 3600


def remove_dead_temps(path: Path) -> list[Path]:
    """Delete temp files of ``path`` left by this host's writers that died
    before their rename (``kill -9``, power loss). A live writer's temp file is
    never touched: its process id is still running. Another host's are left
    alone: a process id means nothing across hosts sharing a folder (NFS).
    Returns what was removed."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:(.+)\.)?(\d+)\.\d+\.tmp")
    here = host_tag()
    removed = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        host, pid = match.group(1), int(match.group(2))
        if host is not None and host != here:
            continue
        if host == here and pid == os.getpid():
            continue
        if _pid_alive(pid) and host is not None:
            continue
        if host is None and (_pid_alive(pid) or not _older_than(path.parent / name)):
            continue
        with contextlib.suppress(FileNotFoundError):
            (path.parent / name).unlink()
            removed.append(path.parent / name)
    return removed


def _older_than(path: Path, seconds: float = _UNKNOWN_HOST_GRACE_S) -> bool:
    import time

    try:
        return time.time() - os.lstat(path).st_mtime > seconds
    except OSError:
        return False


def _refuse_symlink(path: Path) -> None:
    # Renaming over a link would replace the link, and its shared target would
    # never see the change: refuse, and say what to do instead.
    if os.path.islink(path):
        raise RegistryWriteError(
            f"{path}: is a symlink (to {os.readlink(path)}); refusing to replace it: "
            "point registry.dir at the target's folder, or replace the link with a file"
        )


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: temp file in the same folder, fsync,
    rename, fsync the folder. Raises ``OSError``; never leaves a temp file.
    ``durable=False`` skips both fsyncs (still atomic): for records that are
    only hints, redone when lost, where hundreds of fsyncs would cost seconds."""
    if os.path.islink(path):
        raise OSError(f"{path} is a symlink; refusing to replace it")
    remove_dead_temps(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        _fsync_dir(path.parent)


def file_holds(path: Path, pieces: Iterable[bytes]) -> bool:
    """True when ``path``'s bytes are exactly the concatenated ``pieces``."""
    current = _open_regular(path)
    if current is None:
        return False
    with current:
        for piece in pieces:
            if current.read(len(piece)) != piece:
                return False
        return current.read(1) == b""


def write_if_changed(path: Path, pieces: Iterable[bytes]) -> bool:
    """Atomically replace ``path`` with ``pieces`` unless it already holds them.

    One pass: the pieces go to a temp file while being compared with the
    current file; the temp file is dropped when they match. Returns True when
    the file was replaced; failures raise ``RegistryWriteError``. Callers hold
    the registry lock; temp files left by dead writers are removed here.
    """
    _refuse_symlink(path)
    remove_dead_temps(path)
    tmp = temp_path(path)
    try:
        current = _open_regular(path)
        try:
            same = current is not None
            with open(tmp, "wb") as out:
                for piece in pieces:
                    out.write(piece)
                    if same and current.read(len(piece)) != piece:
                        same = False
                if same and current.read(1) == b"":
                    tmp.unlink()
                    return False
                out.flush()
                os.fsync(out.fileno())
        finally:
            if current is not None:
                current.close()
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:  # ValueError: a NaN the encoder refused
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise RegistryWriteError(f"{path}: cannot write: {reason}") from None
    _fsync_dir(path.parent)
    return True


def _open_regular(path: Path):
    """``path`` opened for reading if it is a regular file, else None (a FIFO
    must not block a writer comparing contents; it is simply replaced)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return open(fd, "rb")  # noqa: SIM115 (the caller closes it)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every filesystem allows it.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
