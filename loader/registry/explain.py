"""Provenance: which layer each resolved field of an entry came from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loader.registry.capabilities import canonical_only, clean_served_model_id
from loader.registry.compose import CURATED, DISCOVERED, OVERRIDE, DynamicFields, Sources, layer_of
from loader.registry.layers import Layer
from loader.registry.merge import value_at

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loader.registry.compose import Composed
    from loader.registry.schema import RegistryEntry


def stored_values(sources: Sources, name: str, path: tuple[str, ...]) -> tuple[Any, Any]:
    """The value at ``path`` as written in the curated and the discovered
    layer (``None`` where a layer does not set it), before interpolation."""
    found = []
    for layer in (sources.curated, sources.discovered):
        index = Sources.find(layer, name)
        found.append(None if index is None else value_at(layer.entries[index], path))
    return found[0], found[1]


def explain_entry(
    name: str, entry: RegistryEntry, sources: Sources, composed: Composed, dynamic: DynamicFields
) -> dict[str, Any]:
    """Every resolved field of entry ``name`` with the layer it came from."""
    prov = sources.provenance(name, dynamic)
    interpolated = composed.interpolated.get(name, {})
    overridden = composed.overridden.get(name, {})
    rows = []
    for path, value in _leaves(entry.model_dump(), ()):
        row: dict[str, Any] = {"field": ".".join(path), "value": value}
        override = next((overridden[p] for p in _prefixes(path) if p in overridden), None)
        row["source"] = OVERRIDE if override else layer_of(prov, path)
        if override:
            row["override"] = override
        raws = {".".join(p): t for p, t in interpolated.items() if p[: len(path)] == path}
        if raws:
            row["raw"] = raws.get(".".join(path)) or raws
        rows.append(row)
        if path == ("served_model_id",) and value is not None and not clean_served_model_id(value):
            row["repaired"] = (
                f"{value!r} is a placeholder left by an old bug; treated as absent, "
                f"so the served id is the logical name {name!r}"
            )
    curated_index = Sources.find(sources.curated, name)
    discovered_index = Sources.find(sources.discovered, name)
    return {
        "name": name,
        "layers": {
            CURATED: _layer_ref(sources.curated, curated_index),
            DISCOVERED: _layer_ref(sources.discovered, discovered_index),
        },
        "capabilities": canonical_only(entry.normalized_capabilities()),
        "fields": rows,
    }


def _layer_ref(layer: Layer, index: int | None) -> dict[str, Any] | None:
    return None if index is None else {"file": str(layer.path), "index": index}


def _prefixes(path: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [path[:end] for end in range(len(path), 0, -1)]


def _leaves(data: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path, data
