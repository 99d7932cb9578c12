"""Per-invocation entry overrides: ``NAME.field.path=VALUE``, never persisted."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from loader import strictjson
from loader.errors import OverrideError
from loader.registry.merge import Path_


# A named tuple, not a dataclass: `list` imports this, and importing
# dataclasses (with inspect) costs it ~8 ms on Python 3.11.
class EntryOverride(NamedTuple):
    """``NAME.field.path=VALUE`` from the command line; never persisted."""

    text: str
    name: str
    path: Path_
    value: Any


def parse_entry_overrides(texts: Sequence[str], names: Iterable[str]) -> list[EntryOverride]:
    """Parse overrides, matching the longest entry name before a ``.``.

    Entry names contain dots and parentheses (``qwen2.5-vl-7b_(AWQ)``), so the
    name is whichever known name the key starts with, longest first.
    """
    by_length = sorted(names, key=len, reverse=True)
    parsed = []
    for text in texts:
        key, sep, raw_value = str(text).partition("=")
        if not sep or not key:
            raise OverrideError(f"override {text!r}: expected NAME.FIELD=VALUE")
        name = next((n for n in by_length if key.startswith(n + ".")), None)
        if name is None:
            raise OverrideError(
                f"override {text!r}: no entry name matches the start of {key!r} "
                "(expected NAME.FIELD=VALUE with a registry entry's NAME)"
            )
        path = tuple(key[len(name) + 1 :].split("."))
        if len(path) > strictjson.MAX_DEPTH:
            raise OverrideError(
                f"override for {name!r}: field path deeper than {strictjson.MAX_DEPTH} levels"
            )
        if any(not part for part in path) or path[0] == "name":
            raise OverrideError(f"override {text!r}: bad field path {'.'.join(path)!r}")
        parsed.append(EntryOverride(text, name, path, parse_value(name, path, raw_value)))
    return parsed


def parse_value(name: str, path: Path_, raw: str) -> Any:
    """An override's value: JSON where it parses (numbers, true/false/null,
    lists, objects), else the text itself."""
    try:
        return strictjson.loads(raw)
    except json.JSONDecodeError:
        return raw
    except strictjson.StrictJsonError as exc:
        where = ".".join((*path, *exc.where))
        raise OverrideError(f"override for {name!r}: {where}: value {exc.problem}") from None
