"""File I/O every part of the loader shares, written once.

* ``Fingerprint``: the one answer to "has this file changed?" (size, mtime,
  ctime, inode), used by the hash cache, the snapshot stamps, the config
  cache key and doit's file-change check.
* ``atomic_write``: replace a file whole: temp file beside it (named for
  this host, process and thread), fsync, rename, fsync the folder; temp files
  of this host's dead writers are removed first.
* ``read_regular_file``: read a bounded regular file without blocking on a
  FIFO or reading a device for ever; ``NotRegularFile`` otherwise.
* ``Root``: open files beneath a root folder without following any link.

It imports nothing from the rest of the loader, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
from _thread import RLock, get_ident  # threading's own primitives, without its import
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, NamedTuple

try:  # hashlib's own BLAKE2, without loading OpenSSL: ~3 ms of every `list`
    from _blake2 import blake2b as _blake2b
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import blake2b as _blake2b

# --- has this file changed? -------------------------------------------------


class Fingerprint(NamedTuple):
    """What changes whenever a file's content may have: a write moves
    ``mtime``/``size``, a ``touch`` or ``chmod`` moves ``ctime``, a
    replacement by rename brings another ``ino``."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> Fingerprint:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    @classmethod
    def of_path(cls, path: str | os.PathLike[str]) -> Fingerprint | None:
        """The file's fingerprint, or None when it does not exist."""
        try:
            return cls.of(os.stat(path))
        except FileNotFoundError:
            return None


def same_file_unchanged(a: os.stat_result, b: os.stat_result) -> bool:
    """Two stats of one file, on one device, with nothing written between."""
    return a.st_dev == b.st_dev and Fingerprint.of(a) == Fingerprint.of(b)


# --- reading ----------------------------------------------------------------


class NotRegularFile(OSError):
    """What was opened is a FIFO, device, socket (or, beneath a root, a folder)."""


class FileTooLarge(OSError):
    """The file holds more than the caller's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC


def read_regular_file(path: Path | str, max_bytes: int) -> bytes:
    """Bytes of a regular file, at most ``max_bytes``. Opens without blocking
    and checks the opened descriptor, so a FIFO or device swapped in cannot
    stall or flood the reader. Raises ``OSError`` subclasses."""
    fd = os.open(path, _READ_FLAGS)
    with open(fd, "rb", buffering=0, closefd=True) as handle:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(str(path))
        if st.st_size > max_bytes:
            raise FileTooLarge(max_bytes)
        data = handle.read(max_bytes + 1)  # the file may have grown since fstat
    if len(data) > max_bytes:
        raise FileTooLarge(max_bytes)
    return data


def open_regular(path: Path | str) -> BinaryIO | None:
    """``path`` opened for reading if it is a regular file, else None (a FIFO
    must not block a writer comparing contents; it is simply replaced)."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return open(fd, "rb")  # noqa: SIM115 (the caller closes it)


def file_holds(path: Path, pieces: Iterable[bytes]) -> bool:
    """True when ``path``'s bytes are exactly the concatenated ``pieces``."""
    current = open_regular(path)
    if current is None:
        return False
    with current:
        for piece in pieces:
            if current.read(len(piece)) != piece:
                return False
        return current.read(1) == b""


def key_digest(*parts: str) -> str:
    """A 32-hex-digit name for a cache entry made of ``parts`` (BLAKE2b,
    128 bits): for naming caches, never for checking content."""
    digest = _blake2b(digest_size=16)
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


# --- writing ----------------------------------------------------------------


def host_tag() -> str:
    """This host's name as it goes into temp file names (no path separators)."""
    import socket  # only a write needs it; a read-only `list` skips the import

    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def temp_path(path: Path) -> Path:
    """Where a write of ``path`` stages its bytes: beside it, named for this
    host, process and thread, so a writer that died can be told apart from a
    live one, and only on the host whose process ids those are."""
    return path.with_name(f".{path.name}.{host_tag()}.{os.getpid()}.{get_ident()}.tmp")


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
    removed: list[Path] = []
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
    try:
        return time.time() - os.lstat(path).st_mtime > seconds
    except OSError:
        return False


def atomic_write(
    path: Path,
    data: bytes | Iterable[bytes],
    *,
    durable: bool = True,
    unless_same: bool = False,
) -> bool:
    """Replace ``path`` with ``data`` (bytes, or pieces of bytes): a temp file
    in the same folder, fsync, rename, fsync the folder. Keeps the old file's
    permissions. Raises ``OSError`` (``ValueError`` from a piece generator
    passes through); never leaves a temp file.

    ``unless_same``: compare with the current file while writing, and leave
    it alone (returning False) when it already holds these bytes.
    ``durable=False`` skips both fsyncs (still atomic): for records that are
    only hints, redone when lost, where hundreds of fsyncs would cost seconds.
    Returns True when the file was replaced.
    """
    if os.path.islink(path):
        raise OSError(f"{path} is a symlink; refusing to replace it")
    pieces = [data] if isinstance(data, bytes | bytearray) else data
    remove_dead_temps(path)
    tmp = temp_path(path)
    try:
        current = open_regular(path) if unless_same else None
        try:
            compare = current  # the current file, while it still matches what is written
            with open(tmp, "wb") as out:
                for piece in pieces:
                    out.write(piece)
                    if compare is not None and compare.read(len(piece)) != piece:
                        compare = None
                if compare is not None and compare.read(1) == b"":
                    tmp.unlink()
                    return False
                if durable:
                    out.flush()
                    os.fsync(out.fileno())
        finally:
            if current is not None:
                current.close()
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)
    return True


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """``atomic_write`` of one bytes object (see there)."""
    atomic_write(path, data, durable=durable)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable; not every filesystem allows it."""
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


# --- opening beneath a root -------------------------------------------------
# A path checked with ``realpath`` can change before it is opened: a parent
# folder swapped for a symlink leads outside the root, a file swapped for a
# FIFO blocks the reader. So every component is opened relative to the
# previous one's descriptor with ``O_NOFOLLOW`` (``openat`` one step at a
# time), the file without blocking, and the opened descriptor is checked with
# ``fstat``, never the path.

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC

# Where openat is missing (Windows), fall back to checked paths.
BENEATH_SUPPORTED = os.open in os.supports_dir_fd and bool(_NOFOLLOW)


class LinkOnPath(OSError):
    """A component of the path is (now) a symlink or not a folder."""


class Root:
    """A root folder opened once; files beneath it are opened from its
    descriptor. Folder descriptors are opened once (without following links)
    and reused, so each file costs one ``openat``. Thread-safe; ``close()``
    releases them all."""

    def __init__(self, root_real: str) -> None:
        self.path = root_real
        self._folders: dict[tuple[str, ...], int] = {(): os.open(root_real, _DIR_FLAGS)}
        self._mutex = RLock()

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
