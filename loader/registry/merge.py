"""Merging an entry's curated and discovered copies: which layer wins a field.

Precedence per field, lowest first: schema defaults, discovered, curated for
static fields (``null`` in curated is "no opinion"), discovered for dynamic
fields (``registry.dynamic_fields``). Dicts merge key by key; lists are
replaced whole. Merged data shares unchanged sub-objects with the layers, so
everything here that changes a value copies along its path.
"""

from __future__ import annotations

from typing import Any

from loader.registry.field_patterns import FieldPatterns

# Bump when the merge rules change: snapshots stamped under older rules are
# then composed again instead of trusted.
RULES_VERSION = 1

CURATED = "curated"
DISCOVERED = "discovered"
DEFAULT = "default"
OVERRIDE = "override"

Path_ = tuple[str, ...]


# Top-level fields owned by tooling (``registry.dynamic_fields``).
DynamicFields = FieldPatterns


def merge_entry(
    curated: dict[str, Any] | None,
    discovered: dict[str, Any] | None,
    dynamic: DynamicFields,
    provenance: dict[Path_, str] | None = None,
) -> dict[str, Any]:
    """One entry from its curated and discovered copies (either may be None).

    Key order follows the discovered copy, then keys only curated has, which
    reproduces the ImageWorks loader's snapshot byte for byte.
    """
    if discovered is None or curated is None:
        only, layer = (curated, CURATED) if discovered is None else (discovered, DISCOVERED)
        if only is None:
            raise TypeError("merge_entry needs a curated or a discovered copy")
        if provenance is not None:
            for key in only:
                provenance[(key,)] = layer
        return dict(only)
    out: dict[str, Any] = {}
    for key, disc_value in discovered.items():
        if key in curated:
            out[key] = _merge_value(
                disc_value, curated[key], key not in dynamic, (key,), provenance
            )
        else:
            out[key] = disc_value
            _note(provenance, (key,), DISCOVERED)
    for key, cur_value in curated.items():
        if key not in discovered:
            out[key] = cur_value
            _note(provenance, (key,), CURATED)
    return out


def _merge_value(
    disc: Any, cur: Any, curated_wins: bool, path: Path_, provenance: dict[Path_, str] | None
) -> Any:
    if disc == cur:  # real discovered files repeat the curated copy; skip the walk
        _note(provenance, path, CURATED if curated_wins else DISCOVERED)
        return disc
    if not (isinstance(disc, dict) and isinstance(cur, dict)):
        if curated_wins and cur is not None:
            _note(provenance, path, CURATED)
            return cur
        _note(provenance, path, DISCOVERED)
        return disc
    out: dict[str, Any] = {}
    for key, disc_value in disc.items():
        if key not in cur:
            out[key] = disc_value
            _note(provenance, (*path, key), DISCOVERED)
            continue
        cur_value = cur[key]
        if provenance is None and not (type(disc_value) is dict and type(cur_value) is dict):
            # The common leaf case, inlined: this loop runs for every field.
            if curated_wins and cur_value is not None:
                out[key] = cur_value
            else:
                out[key] = disc_value
        else:
            out[key] = _merge_value(disc_value, cur_value, curated_wins, (*path, key), provenance)
    for key, cur_value in cur.items():
        if key not in disc:
            out[key] = cur_value
            _note(provenance, (*path, key), CURATED)
    return out


def _note(provenance: dict[Path_, str] | None, path: Path_, layer: str) -> None:
    if provenance is not None:
        provenance[path] = layer


def set_path(data: Any, path: Path_, value: Any) -> Any:
    """A copy of ``data`` with ``path`` set, copying only the containers on the
    path. A list step takes a numeric part; a missing step becomes a dict."""
    head, *rest = path
    if isinstance(data, list):
        out_list = list(data)
        index = int(head)
        out_list[index] = set_path(out_list[index], tuple(rest), value) if rest else value
        return out_list
    out = dict(data) if isinstance(data, dict) else {}
    if rest:
        child = out.get(head)
        child = child if isinstance(child, dict | list) else {}
        out[head] = set_path(child, tuple(rest), value)
    else:
        out[head] = value
    return out


def value_at(data: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` inside nested dicts, or None."""
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def layer_of(provenance: dict[Path_, str], path: Path_) -> str:
    """The layer that decided ``path`` (the nearest recorded ancestor)."""
    for end in range(len(path), 0, -1):
        layer = provenance.get(path[:end])
        if layer is not None:
            return layer
    return DEFAULT
