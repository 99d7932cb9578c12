"""Indented JSON at C speed, byte for byte what ``json.dumps(indent=N)`` writes.

The standard library encodes with ``indent`` in pure Python, one generator
per nesting level and one yield per token; that cost two thirds of the first
``list`` after an edit of a 1,000-entry registry. Its C encoder has no
indent, but its item separator may be any text: a container that holds no
other non-empty container (most of a registry: capability maps, backend
configs, artifact records) is written by the C encoder in one call, with
``",\\n" + indentation`` as the separator, and only its brackets are laid out
here. Containers that nest others are walked in Python, one step per item.
"""

from __future__ import annotations

import json
import json.encoder as _std
from collections.abc import Callable, Iterator
from typing import Any

# The C encoder behind ``json.dumps``; None on an interpreter without the C
# accelerator. Private to the standard library, so typeshed does not declare it.
_c_make_encoder: Callable[..., Any] | None = getattr(_std, "c_make_encoder", None)

_SCALARS = frozenset({str, int, float, bool, type(None)})
_LITERALS = {None: "null", True: "true", False: "false"}
_NESTED = (dict, list, tuple)
_CONTAINERS = frozenset(_NESTED)
_PLAIN = _SCALARS | _CONTAINERS
# Stands for a nested container while its parent is encoded; no registry
# holds this text (and if one did, that container is written item by item).
_SLOT = "\x00imageworks-loader:nested\x00"


class _Writer:
    """One encoding: its indentation step, string escaping and C encoders."""

    def __init__(self, step: str, ensure_ascii: bool) -> None:
        self.step = step
        self.string = _std.encode_basestring_ascii if ensure_ascii else _std.encode_basestring
        self.markers: dict[int, Any] = {}  # shared with the C encoders: cycles are refused
        self._default = json.JSONEncoder().default
        self._flat: dict[int, Any] = {}
        self.slot_text = self.string(_SLOT)
        self._newlines: dict[int, tuple[str, str]] = {}

    def _c_encoder(self, item_separator: str) -> Any:
        if _c_make_encoder is None:  # dumps and iter_dumps never build a _Writer then
            raise RuntimeError("json's C encoder is not available")
        return _c_make_encoder(
            self.markers, self._default, self.string, None, ": ", item_separator,
            False, False, False,
        )  # fmt: skip

    def flat(self, depth: int) -> Any:
        """The C encoder for a container at ``depth`` whose items are scalars."""
        encoder = self._flat.get(depth)
        if encoder is None:
            encoder = self._flat[depth] = self._c_encoder(",\n" + self.step * (depth + 1))
        return encoder

    def scalar(self, value: Any) -> str:
        kind = type(value)
        if kind is str:
            return self.string(value)
        if kind is bool or value is None:
            return _LITERALS[value]
        if kind is int:
            return int.__repr__(value)
        return "".join(self.flat(0)(value, 0))  # floats (NaN refused), empty containers, others

    def key(self, key: Any) -> str:
        if type(key) is str:
            return self.string(key)
        # A number, bool or None key as the standard encoder writes it (or its error).
        return "".join(self.flat(0)({key: 0}, 0))[1:-4]

    def text(self, value: Any, depth: int, indent: int | str) -> str:
        """``value`` laid out from ``depth``; an error is the standard encoder's own."""
        out: list[str] = []
        try:
            self.write(value, depth, out)
        except ValueError:  # NaN or a cycle: raise exactly what json.dumps raises
            self.markers.clear()
            _standard(value, indent, self.string is _std.encode_basestring_ascii)
            raise
        return "".join(out)

    def write(self, value: Any, depth: int, out: list[str]) -> None:
        """``value`` laid out with its first line at ``depth``, appended to ``out``."""
        kind = type(value)
        if kind is dict:
            items: Any = value.values()
        elif kind is list or kind is tuple:
            items = value
        elif isinstance(value, _NESTED):  # a subclass: the careful way
            self._guarded(value, depth, out, self._write_items)
            return
        else:
            out.append(self.scalar(value))
            return
        types = set(map(type, items))
        if not value or types <= _SCALARS:
            out.append(self._flat_text(value, depth))
        elif types <= _PLAIN:
            self._guarded(value, depth, out, self._write_slotted)
        else:
            self._guarded(value, depth, out, self._write_items)

    def _guarded(self, value: Any, depth: int, out: list[str], how: Any) -> None:
        marker = id(value)
        if marker in self.markers:
            raise ValueError("Circular reference detected")
        self.markers[marker] = value
        how(value, depth, out)
        del self.markers[marker]

    def _write_slotted(self, value: Any, depth: int, out: list[str]) -> None:
        # The nested containers become slots; the C encoder lays out the rest
        # in one call, and each slot is replaced by its container's layout.
        if type(value) is dict:
            nested = [v for v in value.values() if type(v) in _CONTAINERS and v]
            shallow: Any = {
                k: _SLOT if type(v) in _CONTAINERS and v else v for k, v in value.items()
            }
        else:
            nested = [v for v in value if type(v) in _CONTAINERS and v]
            shallow = [_SLOT if type(v) in _CONTAINERS and v else v for v in value]
        pieces = self._flat_text(shallow, depth).split(self.slot_text)
        if len(pieces) != len(nested) + 1:  # the data itself holds the slot's text
            self._write_items(value, depth, out)
            return
        out.append(pieces[0])
        for container, piece in zip(nested, pieces[1:], strict=True):
            self.write(container, depth + 1, out)
            out.append(piece)

    def _flat_text(self, value: Any, depth: int) -> str:
        """A container whose items are scalars (or empty containers), laid out."""
        text = "".join(self.flat(depth)(value, 0))
        if len(text) == 2:
            return text  # "[]" and "{}" stay on one line
        inner, outer = self.newlines(depth)
        return text[0] + inner + text[1:-1] + outer + text[-1]

    def newlines(self, depth: int) -> tuple[str, str]:
        """The line break and indentation inside a container at ``depth``, and before its closer."""
        known = self._newlines.get(depth)
        if known is None:
            known = self._newlines[depth] = (
                "\n" + self.step * (depth + 1),
                "\n" + self.step * depth,
            )
        return known

    def _write_items(self, value: Any, depth: int, out: list[str]) -> None:
        """Item by item (only when a string in the data equals the slot)."""
        inner, outer = self.newlines(depth)
        is_dict = isinstance(value, dict)
        separator = ("{" if is_dict else "[") + inner
        for key, item in value.items() if is_dict else enumerate(value):
            out.append(separator + (self.key(key) + ": " if is_dict else ""))
            separator = "," + inner
            if isinstance(item, _NESTED) and item:
                self.write(item, depth + 1, out)
            else:
                out.append(self.scalar(item))
        out.append(outer + ("}" if is_dict else "]"))


def _step(indent: int | str) -> str:
    return " " * indent if isinstance(indent, int) else indent


def dumps(data: Any, indent: int | str, ensure_ascii: bool = False) -> str:
    """``json.dumps(data, indent=indent, ensure_ascii=ensure_ascii, allow_nan=False)``."""
    if _c_make_encoder is None:  # an interpreter without the C accelerator
        return _standard(data, indent, ensure_ascii)
    return _Writer(_step(indent), ensure_ascii).text(data, 0, indent)


def iter_dumps(data: Any, indent: int | str, ensure_ascii: bool = False) -> Iterator[str]:
    """The same text in pieces, a top-level list one item at a time, so a
    large registry is never held twice over as fragments. An iterator is
    written as the list of its items, each made only when it is reached."""
    if isinstance(data, Iterator):
        if _c_make_encoder is None:
            data = list(data)
    elif not isinstance(data, list) or not data or _c_make_encoder is None:
        yield dumps(data, indent, ensure_ascii)
        return
    step = _step(indent)
    writer = _Writer(step, ensure_ascii)
    separator = "[\n" + step
    for item in data:
        yield separator + writer.text(item, 1, indent)
        separator = ",\n" + step
    yield "[]" if separator.startswith("[") else "\n]"


def _standard(data: Any, indent: int | str, ensure_ascii: bool) -> str:
    return json.dumps(data, indent=indent, ensure_ascii=ensure_ascii, allow_nan=False)
