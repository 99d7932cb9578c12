"""The ``Registry``: one registry composed with one config and one set of overrides.

It loads (reading the confirmed snapshot when it may, else composing the
layers) and reloads when a layer file changes (``loader.registry.reading``),
saves this process's changes into the discovered layer
(``loader.registry.saving``), keeps the merged snapshot current
(``loader.registry.snapshot_writing``) and tells where each field came from
(``loader.registry.explain``). What it loaded and what is pending lives in one
``RegistryState``; how the layers are read is its storage strategy: a registry
folder (``FolderLayers``) or one legacy ``model_registry.json``
(``loader.registry.legacy.SingleFileLayers``).
"""

from __future__ import annotations

from typing import Any

from loader.registry.reading import unknown_message
from loader.registry.saving import RegistryWriter
from loader.registry.snapshot_writing import SnapshotWriter

__all__ = ["Registry", "unknown_message"]


class Registry(RegistryWriter, SnapshotWriter):
    """A registry folder composed with one config and one set of overrides."""

    def stored(self, name: str, path: tuple[str, ...]) -> tuple[Any, Any]:
        """The value at ``path`` as written in the curated and the discovered
        layer (``None`` where a layer does not set it), before interpolation."""
        from loader.registry.explain import stored_values

        return stored_values(self.ensure_composed().sources, name, path)

    def explain(self, name: str) -> dict[str, Any]:
        """Every resolved field of an entry with the layer it came from."""
        from loader.registry.explain import explain_entry

        composition = self.ensure_composed()  # provenance needs the layers
        entry = self.get(name)
        return explain_entry(name, entry, composition.sources, composition.composed, self.dynamic)
