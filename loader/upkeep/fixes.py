"""The fixes ``audit --fix`` applies: only those that lose nothing.

Each is a function of the fresh layer copies that ``layer_edit.edit_layers``
hands it, re-checking its condition there (the layers may have changed since
the audit read them), so applying one twice, or after another, is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loader.registry.compose import CURATED, DISCOVERED
from loader.upkeep.layer_edit import Entries, drop, layer_entry, put, value_at

Fixer = Callable[[dict[str, Entries]], None]


def merged(disc: Any, cur: Any) -> Any:
    # A dynamic field: discovered wins key by key; curated fills what it lacks.
    if isinstance(disc, dict) and isinstance(cur, dict):
        out = dict(cur)
        for key, value in disc.items():
            out[key] = merged(value, cur.get(key)) if key in cur else value
        return out
    return cur if disc is None else disc


def covers(value: Any, cur: Any) -> bool:
    """True when every non-null curated leaf survives in ``value`` (the merge)."""
    if cur is None:
        return True
    if isinstance(cur, dict):
        return isinstance(value, dict) and all(covers(value.get(k), v) for k, v in cur.items())
    return value == cur


def set_null(layer_key: str, name: str, path: tuple[str, ...]) -> Fixer:
    def apply(copies: dict[str, Entries]) -> None:
        entry = layer_entry(copies[layer_key], name)
        if entry is not None and isinstance(value_at(entry, path), str):
            put(entry, path, None)

    return apply


def move_dynamic(name: str, key: str) -> Fixer:
    def apply(copies: dict[str, Entries]) -> None:
        cur = layer_entry(copies[CURATED], name)
        if cur is None or key not in cur:
            return
        disc = layer_entry(copies[DISCOVERED], name)
        if disc is None:
            disc = {"name": name}
            copies[DISCOVERED].append(disc)
        disc[key] = merged(disc.get(key), cur[key])
        drop(cur, (key,))

    return apply


def drop_curated(name: str, keys: list[str]) -> Fixer:
    def apply(copies: dict[str, Entries]) -> None:
        cur = layer_entry(copies[CURATED], name)
        disc = layer_entry(copies[DISCOVERED], name)
        if cur is None or disc is None:
            return
        for key in keys:
            if key in cur and cur[key] == disc.get(key):
                del cur[key]

    return apply
