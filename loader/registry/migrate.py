"""From the ImageWorks loader's single ``model_registry.json`` to the layers.

``migrate`` splits each entry of a legacy single-file registry into the
curated layer (static fields) and the discovered layer (the dynamic fields
of config ``registry.dynamic_fields``), keeping each entry's key order. Run
again, it finds nothing to do. When the layers already exist, entries that
only the snapshot holds (added by hand to ``model_registry.json``) are named
and adopted, whole, into the discovered layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loader.errors import RegistryLoadError
from loader.registry.compose import DynamicFields, Sources
from loader.registry.layers import (
    Layer,
    layer_from_bytes,
    read_layer_bytes,
    registry_lock,
    write_if_changed,
)
from loader.registry.registry import Registry
from loader.registry.snapshot_record import hand_added, read_record

__all__ = ["MigrateResult", "migrate", "snapshot_only_entries", "split_entry"]


@dataclass
class MigrateResult:
    """What ``migrate`` did, or with ``dry_run`` would do."""

    folder: str
    action: str  # "split", "adopt" or "nothing"
    dry_run: bool
    written: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    curated: list[dict[str, Any]] | None = None  # the split, shown by --dry-run
    discovered: list[dict[str, Any]] | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "warnings"}
        return {k: v for k, v in data.items() if v is not None}


def split_entry(
    entry: dict[str, Any], dynamic: DynamicFields
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(curated part, discovered part or None): the dynamic fields go to the
    discovered part, everything else to the curated one, in the entry's order."""
    curated = {k: v for k, v in entry.items() if k == "name" or k not in dynamic}
    tooling = {k: v for k, v in entry.items() if k == "name" or k in dynamic}
    return curated, (tooling if len(tooling) > 1 else None)


def snapshot_only_entries(
    snapshot: Layer, curated: Layer, discovered: Layer
) -> list[dict[str, Any]]:
    """Snapshot entries that neither layer has (hand-edited into the snapshot)."""
    layered = {e["name"] for e in curated.entries} | {e["name"] for e in discovered.entries}
    return [e for e in snapshot.entries if e["name"] not in layered]


def migrate(registry: Registry, *, dry_run: bool = False) -> MigrateResult:
    """Split or adopt (see the module docstring); writes nothing on ``dry_run``."""
    files = registry.layer_files()
    if not files.folder.is_dir():
        raise RegistryLoadError(f"{files.folder.absolute()}: registry folder not found")
    result = MigrateResult(folder=str(files.folder), action="nothing", dry_run=dry_run)
    with registry_lock(files.folder):
        snapshot_raw = read_layer_bytes(files.snapshot)
        snapshot = layer_from_bytes(files.snapshot, snapshot_raw)
        curated = layer_from_bytes(files.curated, read_layer_bytes(files.curated))
        discovered = layer_from_bytes(files.discovered, read_layer_bytes(files.discovered))
        if not snapshot.exists and not curated.exists and not discovered.exists:
            raise RegistryLoadError(f"{files.folder}: no {files.snapshot.name} to migrate")
        if not curated.exists and not discovered.exists:
            _split(registry, snapshot, curated, discovered, result)
        else:
            _adopt(registry, snapshot, snapshot_raw or b"", curated, discovered, result)
        if dry_run:
            return result
        result.curated = result.discovered = None  # written, not shown
        for layer in (discovered, curated):
            if layer.path.name in result.written and not write_if_changed(
                layer.path, layer.style.pieces(layer.entries)
            ):
                result.written.remove(layer.path.name)
    registry.load(full=True)  # the layers now compose to what the snapshot held
    return result


def _split(
    registry: Registry, snapshot: Layer, curated: Layer, discovered: Layer, result: MigrateResult
) -> None:
    for entry in snapshot.entries:
        static, tooling = split_entry(entry, registry.dynamic)
        curated.entries.append(static)
        if tooling is not None:
            discovered.entries.append(tooling)
    curated.style = discovered.style = snapshot.style
    _check(registry, curated, discovered)
    result.action = "split"
    result.curated, result.discovered = curated.entries, discovered.entries
    result.written = [curated.path.name, discovered.path.name]


def _adopt(
    registry: Registry,
    snapshot: Layer,
    snapshot_raw: bytes,
    curated: Layer,
    discovered: Layer,
    result: MigrateResult,
) -> None:
    orphans = snapshot_only_entries(snapshot, curated, discovered)
    # Entries removed from the layers since the snapshot was written are not
    # orphans: only those added to the snapshot by hand are adopted.
    added = set(hand_added([e["name"] for e in orphans], snapshot_raw, read_record(snapshot.path)))
    orphans = [e for e in orphans if e["name"] in added]
    if not orphans:
        return
    names = ", ".join(repr(e["name"]) for e in orphans)
    verb = "would adopt" if result.dry_run else "adopted"
    result.warnings.append(
        f"warning: {snapshot.path}: entries only in the merged snapshot (hand-edited): "
        f"{names}; {verb} into {discovered.path.name}"
    )
    discovered.entries.extend(orphans)
    if not discovered.exists:
        discovered.style = snapshot.style
    _check(registry, curated, discovered)
    result.action = "adopt"
    result.adopted = [e["name"] for e in orphans]
    result.discovered = orphans
    result.written = [discovered.path.name]


def _check(registry: Registry, curated: Layer, discovered: Layer) -> None:
    # The new layers must compose and validate before anything is written.
    registry.compose_sources(Sources(curated=curated, discovered=discovered), with_overrides=False)
