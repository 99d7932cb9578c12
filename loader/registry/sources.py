"""The two layers a registry is composed from, the composed result, and
provenance: which layer (or override) set each field, and where that is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loader.registry.merge import CURATED, DISCOVERED, DynamicFields, Path_, layer_of, merge_entry

if TYPE_CHECKING:
    from loader.registry.layers import Layer


# Plain classes, not dataclasses: every `list` imports this module, and
# importing dataclasses (with inspect) costs it ~8 ms on Python 3.11.
class Composed:
    """The merged registry, before validation, and where each part came from."""

    __slots__ = ("order", "merged", "interpolated", "overridden")

    def __init__(
        self,
        order: list[str],
        merged: dict[str, dict[str, Any]],
        interpolated: dict[str, dict[Path_, str]] | None = None,
        overridden: dict[str, dict[Path_, str]] | None = None,
    ) -> None:
        self.order = order
        self.merged = merged
        self.interpolated: dict[str, dict[Path_, str]] = (
            {} if interpolated is None else interpolated
        )
        self.overridden: dict[str, dict[Path_, str]] = {} if overridden is None else overridden


class Sources:
    """The two layers a registry is composed from."""

    __slots__ = ("curated", "discovered")

    def __init__(self, curated: Layer, discovered: Layer) -> None:
        self.curated = curated
        self.discovered = discovered

    def locate(self, name: str, layer: str) -> str:
        """``FILE: entry 'NAME' (index I)`` for the layer that holds the entry."""
        if layer == CURATED:
            chosen = self.curated
        elif layer == DISCOVERED or self.find(self.discovered, name) is not None:
            chosen = self.discovered  # a default or override: name the entry's file
        else:
            chosen = self.curated
        index = self.find(chosen, name)
        where = f" (index {index})" if index is not None else ""
        return f"{chosen.path}: entry {name!r}{where}"

    @staticmethod
    def find(layer: Layer, name: str) -> int | None:
        for index, entry in enumerate(layer.entries):
            if entry.get("name") == name:
                return index
        return None

    def provenance(self, name: str, dynamic: DynamicFields) -> dict[Path_, str]:
        prov: dict[Path_, str] = {}
        cur, disc = self.find(self.curated, name), self.find(self.discovered, name)
        merge_entry(
            None if cur is None else self.curated.entries[cur],
            None if disc is None else self.discovered.entries[disc],
            dynamic,
            prov,
        )
        return prov


def locate_field(
    result: Composed, sources: Sources, dynamic: DynamicFields, name: str, path: Path_
) -> str:
    """``FILE: entry 'NAME' (index I)`` for the layer (or override) that set
    ``path`` of entry ``name``: where an error message points."""
    overridden = result.overridden.get(name, {})
    for end in range(len(path), 0, -1):
        if path[:end] in overridden:
            return f"override {overridden[path[:end]]!r}: entry {name!r}"
    layer = layer_of(sources.provenance(name, dynamic), path)
    return sources.locate(name, layer)
