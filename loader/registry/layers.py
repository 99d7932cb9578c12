"""Reading and writing the layer files: strict reads, atomic locked writes.

A layer is a JSON list of entry objects. Reads fail with one line naming the
file and the place; writes go to a temp file in the same folder, are fsynced
and renamed over the target, so nothing is ever half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import stat
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loader.errors import RegistryLoadError, RegistryWriteError
from loader.integrity.file_locks import LockTimeout, file_lock
from loader.registry import indent, strictjson

LOCK_NAME = ".model_registry.lock"
LOCK_TIMEOUT_S = 60.0
# Largest layer file read (config ``registry.max_layer_bytes``); a 1,000-entry
# registry is ~5 MB, so this only stops a runaway or a device.
DEFAULT_MAX_LAYER_BYTES = 256 * 1024 * 1024


class RegistryLockBusy(RegistryWriteError):
    """The registry lock is held by another process and the caller would not wait."""


@dataclass
class JsonStyle:
    """How a file was formatted, so rewriting it keeps its bytes."""

    indent: int | None = 2
    ensure_ascii: bool = False
    trailing_newline: bool = True

    def dumps(self, data: Any) -> str:
        return b"".join(self.pieces(data)).decode("utf-8")

    def pieces(self, data: Any, size: int = 1 << 20) -> Iterator[bytes]:
        """The encoded file in ~1 MiB pieces, so a large registry is never one
        string plus a million-item list of fragments in memory. The bytes are
        what ``json.dumps(data, indent=..., ensure_ascii=...)`` gives, written
        through the C encoder (``loader/indent.py``)."""
        if self.indent is None:
            chunks: Iterable[str] = json.JSONEncoder(
                ensure_ascii=self.ensure_ascii, allow_nan=False
            ).iterencode(data)
        else:
            chunks = indent.iter_dumps(data, self.indent, self.ensure_ascii)
        batch: list[str] = []
        length = 0
        for chunk in chunks:
            batch.append(chunk)
            length += len(chunk)
            if length >= size:
                yield "".join(batch).encode("utf-8")
                batch, length = [], 0
        if self.trailing_newline:
            batch.append("\n")
        if batch:
            yield "".join(batch).encode("utf-8")


@dataclass
class Layer:
    """One layer file as read: its entries, in file order, and its format."""

    path: Path
    entries: list[dict[str, Any]]
    style: JsonStyle
    exists: bool = True
    # Lets a load skip walking every value when no ``${`` is in the file.
    has_interpolation: bool = False


def _sniff_style(text: str) -> JsonStyle:
    # Index arithmetic only: slicing a multi-MB text would copy it.
    newline = text.find("\n")
    indent: int | None = None
    if newline != -1:
        end = newline + 1
        while end < len(text) and text[end] == " ":
            end += 1
        indent = (end - newline - 1) or 2
    return JsonStyle(
        indent=indent,
        # Escape non-ASCII only where the file already does; else write UTF-8.
        ensure_ascii=text.isascii() and "\\u" in text,
        trailing_newline=text.endswith("\n"),
    )


def _location(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line} column {col}"


def parse_layer(path: Path, raw: bytes) -> Layer:
    """Parse and check one layer's bytes; errors name the file and place."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start].decode("utf-8", errors="replace")
        raise RegistryLoadError(
            f"{path}: not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
            f"({_location(prefix, len(prefix))})"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text or text.isspace():
        raise RegistryLoadError(f"{path}: empty file (expected a JSON list of entries)")
    try:
        data = strictjson.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryLoadError(
            f"{path}: invalid JSON at {_location(text, exc.pos)}: {exc.msg}"
        ) from None
    except strictjson.StrictJsonError as exc:
        raise RegistryLoadError(_strict_message(path, exc)) from None
    if not isinstance(data, list):
        raise RegistryLoadError(
            f"{path}: expected a JSON list of entries, found {type(data).__name__}"
        )
    seen: dict[str, int] = {}
    for index, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise RegistryLoadError(
                f"{path}: entry at index {index}: expected an object, found {type(entry).__name__}"
            )
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            shown = "missing" if "name" not in entry else f"not a non-empty string: {name!r}"
            raise RegistryLoadError(f"{path}: entry at index {index}: name: {shown}")
        if "${" in name:
            # Names are identities, never interpolated: refuse rather than guess.
            raise RegistryLoadError(
                f"{path}: entry at index {index}: name: holds '${{' (names are never "
                f"interpolated): {name!r}"
            )
        if name in seen:
            raise RegistryLoadError(
                f"{path}: entry {name!r} (index {index}): name: duplicate of index {seen[name]}"
            )
        seen[name] = index
    return Layer(path=path, entries=data, style=_sniff_style(text), has_interpolation="${" in text)


def _strict_message(path: Path, exc: strictjson.StrictJsonError) -> str:
    if not exc.where:
        at = f" at {exc.line_col}" if exc.line_col else ""
        return f"{path}: JSON{at}: {exc.problem}"
    index, *field_path = exc.where
    entry = exc.document[int(index)] if isinstance(exc.document, list) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    found = f" {name!r}" if isinstance(name, str) else ""
    field = ".".join(field_path) or "(the entry itself)"
    return f"{path}: entry{found} (index {index}): {field}: {exc.problem}"


def read_layer_bytes(path: Path, max_bytes: int = DEFAULT_MAX_LAYER_BYTES) -> bytes | None:
    """A layer file's bytes; None when it does not exist.

    Only a regular file is read (a FIFO would block for ever, ``/dev/zero``
    never ends), and at most ``max_bytes`` of it.
    """
    try:
        return read_regular_file(path, max_bytes)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise RegistryLoadError(f"{path}: is a folder, expected a JSON file") from None
    except FileTooLarge as exc:
        raise RegistryLoadError(
            f"{path}: larger than {exc.limit} bytes (registry.max_layer_bytes); refusing to read it"
        ) from None
    except NotARegularFile:
        raise RegistryLoadError(
            f"{path}: not a regular file (a FIFO, device or socket); refusing to read it"
        ) from None
    except OSError as exc:
        raise RegistryLoadError(f"{path}: cannot read: {exc.strerror}") from None


class NotARegularFile(OSError):
    """The path is a FIFO, device or socket."""


class FileTooLarge(OSError):
    """The file holds more than the caller's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


def read_regular_file(path: Path | str, max_bytes: int) -> bytes:
    """Bytes of a regular file, at most ``max_bytes``. Opens without blocking
    and checks the opened descriptor, so a FIFO or device swapped in cannot
    stall or flood the reader. Raises ``OSError`` subclasses."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb", buffering=0, closefd=True) as handle:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile(str(path))
        if st.st_size > max_bytes:
            raise FileTooLarge(max_bytes)
        data = handle.read(max_bytes + 1)  # the file may have grown since fstat
    if len(data) > max_bytes:
        raise FileTooLarge(max_bytes)
    return data


def layer_from_bytes(path: Path, raw: bytes | None) -> Layer:
    """Parse bytes read earlier; None (no file) is an empty layer."""
    if raw is None:
        return Layer(path=path, entries=[], style=JsonStyle(), exists=False)
    return parse_layer(path, raw)


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
