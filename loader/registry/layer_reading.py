"""Reading layer files strictly: bounded, regular files only, one-line errors.

A layer is a JSON list of entry objects. Reads fail with one line naming the
file and the place; the format a file was written in (``JsonStyle``) is kept,
so rewriting it keeps its bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from loader import strictjson
from loader.errors import RegistryLoadError
from loader.fileio import FileTooLarge, NotRegularFile, read_regular_file
from loader.registry import indent

# Largest layer file read (config ``registry.max_layer_bytes``); a 1,000-entry
# registry is ~5 MB, so this only stops a runaway or a device.
DEFAULT_MAX_LAYER_BYTES = 256 * 1024 * 1024


# A named tuple, not a dataclass: `list` imports this, and importing
# dataclasses (with inspect) costs it ~8 ms on Python 3.11.
class JsonStyle(NamedTuple):
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
        through the C encoder (``loader/indent.py``). ``data`` may be an
        iterator: it is written as a list, one item at a time."""
        if self.indent is None:
            if isinstance(data, Iterator):
                data = list(data)
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


class Layer:
    """One layer file as read: its entries, in file order, and its format.
    (A plain class for the reason JsonStyle is a named tuple; migrate
    changes a layer's style, so it is not a tuple.)"""

    __slots__ = ("path", "entries", "style", "exists", "has_interpolation")

    def __init__(
        self,
        path: Path,
        entries: list[dict[str, Any]],
        style: JsonStyle,
        exists: bool = True,
        has_interpolation: bool = False,  # lets a load skip walking every value
    ) -> None:
        self.path = path
        self.entries = entries
        self.style = style
        self.exists = exists
        self.has_interpolation = has_interpolation

    def __repr__(self) -> str:
        return (
            f"Layer(path={self.path!r}, entries=<{len(self.entries)}>, style={self.style!r}, "
            f"exists={self.exists!r}, has_interpolation={self.has_interpolation!r})"
        )


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
    except NotRegularFile:
        raise RegistryLoadError(
            f"{path}: not a regular file (a FIFO, device or socket); refusing to read it"
        ) from None
    except OSError as exc:
        raise RegistryLoadError(f"{path}: cannot read: {exc.strerror}") from None


def layer_from_bytes(path: Path, raw: bytes | None) -> Layer:
    """Parse bytes read earlier; None (no file) is an empty layer."""
    if raw is None:
        return Layer(path=path, entries=[], style=JsonStyle(), exists=False)
    return parse_layer(path, raw)
