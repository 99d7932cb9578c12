"""What a save writes: this process's changes, applied to a fresh read.

A save diffs the entries in memory against a fresh composition of the bytes
they were loaded from, then applies only those fields to the discovered
layer as it is on disk now (read under the registry lock), so concurrent
writers of other entries or fields lose nothing. The curated layer is never
written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from loader import logs
from loader.errors import RegistryWriteError
from loader.registry.compose import CURATED, DynamicFields, Sources, layer_of, set_path
from loader.registry.downloads import refuse_duplicate_downloads
from loader.registry.layers import registry_lock, write_if_changed
from loader.registry.loading import parse_entries
from loader.registry.merge import value_at
from loader.registry.reading import RegistryReader
from loader.registry.snapshot import LayerFiles

if TYPE_CHECKING:
    from loader.registry.savebatch import SaveBatch
    from loader.registry.schema import RegistryEntry

Fields = list[tuple[tuple[str, ...], Any]]


class RegistryWriter(RegistryReader):
    """The part of ``Registry`` that saves this process's changes."""

    def check_writable(self) -> None:
        """Raise ``SingleFileReadOnly`` unless this registry's layers can be written."""
        self.storage.refuse_write()

    def defer_saves(self, batch: SaveBatch | None, hash_cache: Any = None) -> None:
        """From now on ``save()`` writes in batches (``None``: at once again);
        ``flush_saves()`` writes what is pending. ``hash_cache``: the one stat
        cache every hash of the run uses (``batch.before_write`` saves it)."""
        self.state.batch = batch
        self.state.shared_hash_cache = hash_cache

    @property
    def shared_hash_cache(self) -> Any:
        """The run's stat cache, in the process whose batch saves it; else None."""
        batch = self.state.batch
        return self.state.shared_hash_cache if batch is not None and batch.active() else None

    def flush_saves(self) -> bool:
        """Write the saves a ``SaveBatch`` deferred; True when a layer changed."""
        batch = self.state.batch
        if batch is None or not batch.active():
            return False
        if batch.before_write is not None:
            batch.before_write()
        if not batch.pending:
            return False
        changed = self._save_now()
        batch.written()
        return changed

    def read_sources(self) -> Sources:
        """Both layers as they are on disk now (writers call it under the lock)."""
        files = self.layer_files()
        return self.storage.sources(files, *self.storage.read(files, self.max_layer_bytes()))

    def check_sources(self, sources: Sources) -> dict[str, RegistryEntry]:
        """Compose and validate layers a writer is about to save (no overrides);
        raises the same one-line errors a load would, and ``SingleFileReadOnly``
        for a single-file registry (whose file is never written)."""
        self.storage.refuse_write()
        _, entries = self.compose_sources(sources, with_overrides=False)
        return entries

    def save(
        self,
        raw: Mapping[str, Sequence[tuple[tuple[str, ...], Any]]] | None = None,
        *,
        keep_entries: bool = True,
    ) -> bool:
        """Persist what this process changed into the discovered layer
        (under a ``SaveBatch``, when the batch is due: see ``defer_saves``).

        Re-reads the layers under the lock and applies only the fields that
        differ from what this process loaded, so concurrent writers of other
        entries or fields lose nothing. Never writes the curated layer.
        ``raw`` gives values to store as written, after the changes (an
        importer's ``${paths.models}/…`` where the entry holds the resolved
        path). Returns True when a layer file changed.

        ``keep_entries=False`` (a bulk import that holds no entry objects):
        after writing, the layers are validated and the snapshot refreshed
        without keeping the validated entries; ``entries`` is empty until the
        next ``ensure_loaded()`` (or ``load_registry()``) reads them back.
        10,000 entries are ~75 MB that the import itself never needs again.
        """
        self.storage.refuse_write()
        if self.state.released:
            self.ensure_loaded()  # nothing was changed in memory: diff against the layers
        for name, fields in (raw or {}).items():
            self.state.pending_raw.setdefault(name, []).extend(fields)
        batch = self.state.batch
        if batch is not None and batch.active():
            return self.flush_saves() if batch.note() else False
        return self._save_now(keep_entries=keep_entries)

    def _save_now(self, *, keep_entries: bool = True) -> bool:
        files = self.state.files
        if files is None:
            return False
        changes, removed = changed_fields(self.entries, self._baseline_entries(files))
        self.state.removed |= removed
        refuse_duplicate_downloads(
            self.entries,
            [n for n, fields in changes.items() if fields.touches("download_path")],
        )
        pending_raw, self.state.pending_raw = self.state.pending_raw, {}
        for name, fields in pending_raw.items():
            changes.setdefault(name, Changes()).extend(fields)
        with registry_lock(files.folder):
            fresh = self.storage.sources(files, *self.storage.read(files, self.max_layer_bytes()))
            entries = apply_changes(fresh, changes, removed, self.dynamic)
            # A new entry is dumped as it is written, never all of them at once
            # (10,000 imported entries: about 100 MB of dumps).
            changed = write_if_changed(
                files.discovered, fresh.discovered.style.pieces(built(entries))
            )
        del changes, entries, fresh  # a big save holds one copy less while reloading
        deferred, self.defer_snapshot_refresh = self.defer_snapshot_refresh, True
        try:
            if keep_entries:
                # Callers keep using the entry objects they hold: the reload reuses
                # each one whose content it confirms, so a later change is not lost.
                kept = dict(self.entries)
                self.load(full=True, reuse=kept)  # its snapshot refresh is done below
                del kept
            else:
                self._release_entries()  # before the reload: never both in memory
                self._load_layers(keep=False)
        finally:
            self.defer_snapshot_refresh = deferred
        # The reload found the snapshot stale; a save has succeeded, so refresh
        # it now: a writer may wait for the lock as its save did.
        self.flush_snapshot(wait=True)
        return changed

    def _baseline_entries(self, files: LayerFiles) -> dict[str, RegistryEntry]:
        """The entries as loaded, composed afresh from the loaded bytes (so
        objects shared with the entries in memory cannot hide a change)."""
        if self.state.baseline[0] == "snapshot":
            return parse_entries(self.state.baseline_snapshot())
        sources = self.storage.sources(files, *self.state.baseline_layers())
        _, entries = self.compose_sources(sources, with_overrides=True)
        return entries


class Changes:
    """The fields one save changes in one entry: (path, value) pairs, or a
    new entry's whole dump, made only when it is written (``whole``)."""

    __slots__ = ("fields", "whole")

    def __init__(self, fields: Fields | None = None, whole: RegistryEntry | None = None) -> None:
        self.fields: Fields = fields or []
        self.whole = whole

    def __bool__(self) -> bool:
        return bool(self.fields) or self.whole is not None

    def extend(self, fields: Iterable[tuple[tuple[str, ...], Any]]) -> None:
        self.fields.extend(fields)

    def touches(self, key: str) -> bool:
        return self.whole is not None or any(path[0] == key for path, _ in self.fields)

    def items(self) -> Fields:
        """Every (path, value): a new entry's top-level fields, then the rest."""
        if self.whole is None:
            return self.fields
        dumped = self.whole.model_dump().items()
        return [((key,), value) for key, value in dumped if key != "name"] + self.fields

    def entry(self, name: str) -> dict[str, Any]:
        """A new entry as written: its name, its dump, then the other fields."""
        entry: dict[str, Any] = {"name": name}
        if self.whole is not None:
            entry.update((k, v) for k, v in self.whole.model_dump().items() if k != "name")
        for path, value in self.fields:
            entry = set_path(entry, path, value)
        return entry


class _New(NamedTuple):
    """A discovered entry still to be made from its ``Changes`` (see ``built``)."""

    name: str
    changes: Changes


def built(entries: list[dict[str, Any] | _New]) -> Iterator[dict[str, Any]]:
    """``entries`` with each new one dumped as it is reached."""
    for entry in entries:
        yield entry.changes.entry(entry.name) if isinstance(entry, _New) else entry


def changed_fields(
    entries: Mapping[str, RegistryEntry], baseline: Mapping[str, RegistryEntry]
) -> tuple[dict[str, Changes], set[str]]:
    """(fields changed per entry, names removed) between ``baseline`` and ``entries``."""
    changes: dict[str, Changes] = {}
    for name, entry in entries.items():
        if entry.name != name:
            raise RegistryWriteError(
                f"entry {name!r}: renamed to {entry.name!r}; remove it and add a new entry"
            )
        if name not in baseline:
            changes[name] = Changes(whole=entry)
            continue
        fields = list(diff(baseline[name].model_dump(), entry.model_dump(), ()))
        if fields:
            changes[name] = Changes(fields)
    removed = set(baseline) - set(entries)
    return changes, removed


def apply_changes(
    fresh: Sources, changes: dict[str, Changes], removed: set[str], dynamic: DynamicFields
) -> list[dict[str, Any] | _New]:
    """The discovered layer's entries with ``changes`` applied and ``removed``
    dropped; refuses to remove a curated entry, warns when curated masks a change.
    A new entry stays a ``_New`` until ``built`` writes it."""
    curated_names = {e["name"] for e in fresh.curated.entries}
    for name in removed:
        if name in curated_names:
            raise RegistryWriteError(
                f"{fresh.curated.path}: entry {name!r}: curated entries are removed by "
                "editing that file, not by tooling"
            )
    kept = [e for e in fresh.discovered.entries if e["name"] not in removed]
    index = {e["name"]: i for i, e in enumerate(kept)}
    added: list[_New] = []
    for name, fields in changes.items():
        if name in curated_names:
            warn_if_masked(name, fields.items(), fresh, dynamic)
        if name not in index:
            added.append(_New(name, fields))
            continue
        entry = kept[index[name]]
        for path, value in fields.items():
            entry = set_path(entry, path, value)
        kept[index[name]] = entry
    return [*kept, *added]


def warn_if_masked(name: str, fields: Fields, sources: Sources, dynamic: DynamicFields) -> None:
    """One line on stderr for each changed field the curated layer masks."""
    index = Sources.find(sources.curated, name)
    if index is None:
        return
    curated = sources.curated.entries[index]
    prov = sources.provenance(name, dynamic)
    for path, _ in fields:
        if value_at(curated, path) is None:
            continue  # curated null is "no opinion": the discovered value shows
        if layer_of(prov, path) == CURATED and path[0] not in dynamic:
            logs.warning(
                __name__,
                f"{sources.curated.path}: entry {name!r}: {'.'.join(path)} is set "
                "in the curated layer, which wins for static fields; the discovered "
                "change is saved but masked",
            )


def diff(before: Any, after: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, new value) for every leaf that differs between two dumps."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key, value in after.items():
            if key not in before:
                yield (*path, key), value
            else:
                yield from diff(before[key], value, (*path, key))
        for key in before:
            if key not in after:
                yield (*path, key), None
    elif before != after or type(before) is not type(after):
        yield path, after
