"""The public registry API: load (cached, reloads on change), get, list, save.

Names follow the ImageWorks loader so its users can switch: ``load_registry``,
``get_entry``, ``list_models``, ``save_registry``, ``RegistryLoadError``.
State lives in ``Registry`` objects; the module functions use one default
instance, which ``use_registry`` replaces (tests and the CLI do).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loader.config import Config, load_config
from loader.errors import RegistryError, RegistryLoadError, RegistryWriteError, UnknownModelError
from loader.registry.capabilities import canonical_only, clean_served_model_id
from loader.registry.compose import (
    CURATED,
    DISCOVERED,
    OVERRIDE,
    Composed,
    DynamicFields,
    Interpolator,
    Sources,
    compose,
    iter_interpolated,
    layer_of,
    parse_entry_overrides,
    set_path,
    validate,
)
from loader.registry.downloads import refuse_duplicate_downloads
from loader.registry.layers import (
    DEFAULT_MAX_LAYER_BYTES,
    LOCK_TIMEOUT_S,
    Layer,
    RegistryLockBusy,
    file_holds,
    layer_from_bytes,
    read_layer_bytes,
    read_regular_file,
    registry_lock,
    write_if_changed,
)
from loader.registry.snapshot import LayerFiles, SnapshotStamps, Stat, layer_files_for, stat_stamp
from loader.registry.snapshot_record import snapshot_only_names

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from loader.registry.savebatch import SaveBatch
    from loader.registry.schema import RegistryEntry

__all__ = [
    "Registry",
    "RegistryEntry",
    "RegistryLoadError",
    "get_entry",
    "list_models",
    "load_registry",
    "remove_entry",
    "save_registry",
    "update_entries",
    "use_registry",
]

_ENTRY_LIST_ADAPTER = None


def __getattr__(name: str) -> Any:
    # ``RegistryEntry`` is importable from here, but pydantic is imported only
    # when it is used: a ``list`` served from a confirmed snapshot needs none.
    if name == "RegistryEntry":
        from loader.registry.schema import RegistryEntry

        return RegistryEntry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _entry_list_adapter():
    global _ENTRY_LIST_ADAPTER
    if _ENTRY_LIST_ADAPTER is None:
        from pydantic import TypeAdapter

        from loader.registry.schema import RegistryEntry

        _ENTRY_LIST_ADAPTER = TypeAdapter(list[RegistryEntry])
    return _ENTRY_LIST_ADAPTER


class Registry:
    """A registry folder composed with one config and one set of overrides."""

    def __init__(
        self,
        cfg: Config | DictConfig | None = None,
        entry_overrides: Sequence[str] = (),
        *,
        defer_snapshot_refresh: bool = False,
        reference_cfg: Config | None = None,
    ) -> None:
        """``defer_snapshot_refresh``: a load that finds the snapshot stale only
        notes it; ``flush_snapshot()`` writes it (front doors call it once the
        operation succeeded, so a refused command changes no file).

        ``reference_cfg``: the default configuration, which a run composed
        with overrides compares itself with before writing the shared snapshot
        (``loader.one_run``); composed on demand when not given."""
        if cfg is None:
            cfg = load_config()
        elif not isinstance(cfg, Config):
            cfg = Config.from_omegaconf(cfg)
        self.cfg: Config = cfg
        self.dynamic = DynamicFields(self.cfg.get("registry.dynamic_fields"))
        configured = self.cfg.get("entry_overrides") or []
        self.entry_override_texts = [*configured, *entry_overrides]
        self.entries: dict[str, RegistryEntry] = {}
        self.defer_snapshot_refresh = defer_snapshot_refresh
        self.reference_cfg = reference_cfg
        # Why the last write_snapshot() kept the snapshot as it was (a one-run
        # config override it depends on), or None.
        self.snapshot_kept: str | None = None
        # Entries this process removed (``remove_entry``): gone from the snapshot too.
        self._removed: set[str] = set()
        self._snapshot_pending = False
        self.files: LayerFiles | None = None
        self._sources: Sources | None = None
        self._composed: Composed | None = None
        # What the entries were loaded from, to tell this process's changes apart.
        self._baseline: tuple[Any, ...] = ()
        self._stamp: tuple[Stat | None, Stat | None] | None = None
        self._files_for: tuple[Config, LayerFiles] | None = None
        self._batch: SaveBatch | None = None
        # Values to store as written (an importer's ``${paths.models}/…``), kept
        # until the save that writes them (a batch may defer it).
        self._pending_raw: dict[str, list[tuple[tuple[str, ...], Any]]] = {}
        # One stat cache for a run that hashes many models (the pipeline sets
        # it and saves it with each batch); None: each hash loads and saves it.
        self._shared_hash_cache: Any = None
        # Views derived from the loaded entries (``select_model``'s index),
        # built on first use and dropped whenever the entries are (re)loaded.
        self.prepared: dict[str, Any] = {}

    # --- reading -------------------------------------------------------------

    def layer_files(self) -> LayerFiles:
        """The three files' paths, computed once per config (the hot path stats them)."""
        cached = self._files_for
        if cached is None or cached[0] is not self.cfg:
            cached = self._files_for = (self.cfg, layer_files_for(self.cfg))
        return cached[1]

    def max_layer_bytes(self) -> int:
        return int(self.cfg.get("registry.max_layer_bytes") or DEFAULT_MAX_LAYER_BYTES)

    def _read_layers(self, files: LayerFiles) -> tuple[bytes | None, bytes | None]:
        cap = self.max_layer_bytes()
        return read_layer_bytes(files.curated, cap), read_layer_bytes(files.discovered, cap)

    def is_stale(self) -> bool:
        """True when never loaded, or a layer file changed since the load."""
        if self._stamp is None or self.files is None:
            return True
        files = self.layer_files()
        if files is not self.files and files != self.files:
            return True
        return self._stamp != (stat_stamp(files.curated), stat_stamp(files.discovered))

    def load(self, *, full: bool = False) -> dict[str, RegistryEntry]:
        """Read, compose and validate the registry (always from disk).

        When the snapshot is known to be what the current layers compose to
        (see ``SnapshotStamps``), it is read instead: one parse and
        validation in pydantic's core, no merge. ``full=True`` always composes
        the layers, keeping what ``explain`` needs.
        """
        with _gc_paused():
            files = self.layer_files()
            if not files.folder.is_dir():
                raise RegistryLoadError(
                    f"{files.folder.absolute()}: registry folder not found "
                    "(set registry.dir=PATH or IMAGEWORKS_REGISTRY_DIR)"
                )
            if not full and not self.entry_override_texts and self._load_snapshot(files):
                return self.entries
            return self._load_layers(files)

    def confirmed_snapshot(self) -> list[dict[str, Any]] | None:
        """The merged snapshot as plain data when it may stand in for the
        layers, else None (then ``load()`` composes and validates them).

        It may when no ``--set`` override applies and all three files are
        unchanged since this loader wrote or confirmed the snapshot as the
        composition of those layers, which was validated then: so no pydantic,
        no merge, no OmegaConf. Any edit to a layer changes its stat, and the
        next read composes and validates it again. Leaves ``entries`` as they are.
        """
        if self.entry_override_texts:
            return None
        files = self.layer_files()
        stamps = SnapshotStamps(files, self.dynamic)
        stats = stamps.current()
        if not stamps.matches(stats):
            return None
        try:
            raw = read_regular_file(files.snapshot, self.max_layer_bytes())
        except OSError:
            return None
        if stamps.current() != stats:  # replaced while we read it
            return None
        import json

        with _gc_paused():
            try:
                data = json.loads(raw)
            except ValueError:
                return None
        if not isinstance(data, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) for e in data
        ):
            return None
        return data

    def _load_snapshot(self, files: LayerFiles) -> bool:
        stamps = SnapshotStamps(files, self.dynamic)
        stats = stamps.current()
        if not stamps.matches(stats):
            return False
        try:
            raw = read_regular_file(files.snapshot, self.max_layer_bytes())
        except OSError:
            return False
        if stamps.current() != stats:  # replaced while we read it
            return False
        from pydantic import ValidationError

        try:
            loaded = _entry_list_adapter().validate_json(raw)
        except ValidationError:
            return False
        self.files, self._stamp = files, stats[:2]
        self._sources = self._composed = None
        self._replace_entries({entry.name: entry for entry in loaded})
        self._baseline = ("snapshot", raw)
        return True

    def _load_layers(self, files: LayerFiles) -> dict[str, RegistryEntry]:
        stamp = (stat_stamp(files.curated), stat_stamp(files.discovered))
        curated_bytes, discovered_bytes = self._read_layers(files)
        if curated_bytes is None and discovered_bytes is None:
            if files.snapshot.is_file():
                raise RegistryLoadError(
                    f"{files.folder}: holds only {files.snapshot.name}, a legacy single-file "
                    "registry; split it into layers with: imageworks-loader migrate"
                )
            raise RegistryLoadError(
                f"{files.folder}: no registry layers ({files.curated.name} or "
                f"{files.discovered.name}) in this folder"
            )
        sources = _sources(files, curated_bytes, discovered_bytes)
        composed, entries = self._compose(sources, with_overrides=True)
        self.files, self._stamp = files, stamp
        self._sources, self._composed = sources, composed
        self._replace_entries(entries)
        self._baseline = ("layers", curated_bytes, discovered_bytes)
        confirmed = SnapshotStamps(files, self.dynamic).matches(
            (*stamp, stat_stamp(files.snapshot))
        )
        if self.cfg.get("registry.refresh_snapshot_on_load") and not confirmed:
            self._snapshot_pending = True
            if not self.defer_snapshot_refresh:
                self.flush_snapshot()
        return self.entries

    def flush_snapshot(self, *, wait: bool = False) -> None:
        """Refresh a snapshot that the last load found out of date.

        A read never waits on a writer: unless ``wait`` (a writer refreshing
        after its own save), a busy registry lock skips the refresh with one
        line on stderr; the layers were read directly, so nothing is wrong.
        """
        if not self._snapshot_pending or self._sources is None:
            return
        try:
            self.write_snapshot(only_if_layers_unchanged=True, wait=wait)
        except RegistryLockBusy as exc:
            print(
                f"warning: snapshot not refreshed: {exc}; the layers were read directly",
                file=sys.stderr,
            )
        except RegistryWriteError as exc:
            # A read-only registry is still readable; say why its snapshot is old.
            print(f"warning: snapshot not refreshed: {exc}", file=sys.stderr)

    def discard_snapshot_refresh(self) -> None:
        """Forget that the last load found the snapshot stale (a dry run must
        not write even that)."""
        self._snapshot_pending = False

    def _replace_entries(self, fresh: dict[str, RegistryEntry]) -> None:
        # In place, so a caller's ``entries = load_registry()`` stays current.
        self.entries.clear()
        self.entries.update(fresh)
        self.prepared.clear()

    def ensure_loaded(self) -> dict[str, RegistryEntry]:
        if not self.is_stale():
            return self.entries
        if self._batch is not None and self._batch.pending and self._batch.active():
            self.flush_saves()  # merges this run's changes with the edit, then reloads
            return self.entries
        return self.load()

    def _ensure_composed(self) -> tuple[Sources, Composed]:
        if self._sources is None or self._composed is None or self.is_stale():
            self.load(full=True)
        assert self._sources is not None and self._composed is not None
        return self._sources, self._composed

    def _compose(
        self, sources: Sources, *, with_overrides: bool
    ) -> tuple[Composed, dict[str, RegistryEntry]]:
        names = [e["name"] for e in sources.discovered.entries] + [
            e["name"] for e in sources.curated.entries
        ]
        overrides = (
            parse_entry_overrides(self.entry_override_texts, names) if with_overrides else []
        )
        needs_interpolation = (
            sources.curated.has_interpolation
            or sources.discovered.has_interpolation
            or any("${" in str(o.value) for o in overrides)
        )
        interpolator = Interpolator(self.cfg.raw) if needs_interpolation else None
        composed = compose(sources, self.dynamic, overrides, interpolator)
        return composed, validate(composed, sources, self.dynamic)

    def get(self, name: str) -> RegistryEntry:
        entries = self.ensure_loaded()
        try:
            return entries[name]
        except KeyError:
            folder = self.files.folder if self.files else "?"
            raise UnknownModelError(unknown_message(name, entries, folder)) from None

    # --- the merged snapshot -------------------------------------------------

    def snapshot_pieces(self) -> Iterator[bytes]:
        """The snapshot's bytes for the layers as loaded (no overrides)."""
        sources, composed = self._ensure_composed()
        if composed.overridden:
            composed, _ = self._compose(sources, with_overrides=False)
        style = sources.discovered.style if sources.discovered.exists else sources.curated.style
        return style.pieces([composed.merged[name] for name in composed.order])

    def snapshot_text(self) -> str:
        return b"".join(self.snapshot_pieces()).decode("utf-8")

    def write_snapshot(self, *, only_if_layers_unchanged: bool = False, wait: bool = True) -> bool:
        """Write ``model_registry.json`` if its content would change.

        Returns True when the file was rewritten. Records the stamps that let
        later loads read the snapshot instead of composing the layers.
        ``wait=False`` raises ``RegistryLockBusy`` at once if another process
        holds the registry lock.
        """
        sources, _ = self._ensure_composed()
        files = self.files
        assert files is not None
        self._snapshot_pending = False  # whatever happens next, this load's refresh is done
        self.snapshot_kept = self._one_run_difference(sources)
        if self.snapshot_kept is not None:
            return False  # shared: never written with values only this run sees
        if not os.access(files.folder, os.W_OK):
            # A read-only registry (a shared or mounted copy): nothing can be
            # written, but a snapshot that is already right can still serve.
            if not file_holds(files.snapshot, self.snapshot_pieces()):
                raise RegistryWriteError(f"{files.snapshot}: folder is read-only")
            self._record_stamps(files, sources)
            return False
        with registry_lock(files.folder, LOCK_TIMEOUT_S if wait else 0):
            if only_if_layers_unchanged and self._layers_changed(files):
                return False  # another writer got there first; it refreshes the snapshot
            unchanged = SnapshotStamps(files, self.dynamic).snapshot_unchanged()
            if not unchanged and snapshot_only_names(files.snapshot, sources, self._removed):
                return False  # hand-edited entries: kept until `migrate` adopts them
            written = write_if_changed(files.snapshot, self.snapshot_pieces())
            if written:  # a snapshot left as it was keeps its record
                self._record_names(files.snapshot)
            self._record_stamps(files, sources)
            return written

    def _record_names(self, snapshot: Path) -> None:
        # Which names the snapshot now holds came from the layers (see
        # loader.snapshot_record): a later removal from them is told apart
        # from an entry added to the snapshot by hand.
        from loader.registry.snapshot_record import write_record

        _, composed = self._ensure_composed()
        try:
            data = snapshot.read_bytes()
        except OSError:
            return
        write_record(snapshot, data, list(composed.order))

    def _one_run_difference(self, sources: Sources) -> str | None:
        """The config key by which this run's snapshot would differ from the
        default configuration's, or None (see ``loader.one_run``)."""
        if self.cfg.overrides == ():
            return None  # the default configuration itself
        if self.reference_cfg is None:
            try:
                self.reference_cfg = load_config(())
            except (RegistryError, ValueError) as exc:
                # e.g. inside a caller's own Hydra app, whose global Hydra state
                # forbids composing another config: then never write.
                return f"(the default configuration could not be composed: {exc})"
        from loader.registry.one_run import snapshot_difference

        return snapshot_difference(self.cfg, self.reference_cfg, sources)

    def _layers_changed(self, files: LayerFiles) -> bool:
        return (stat_stamp(files.curated), stat_stamp(files.discovered)) != self._stamp

    def _record_stamps(self, files: LayerFiles, sources: Sources) -> None:
        # Never reloads: this runs under the registry lock.
        if _resolves_config(sources.curated) or _resolves_config(sources.discovered):
            return  # resolved values depend on config and environment: never a cache
        if not self._layers_changed(files):
            SnapshotStamps(files, self.dynamic).record()

    # --- writing -------------------------------------------------------------

    def defer_saves(self, batch: SaveBatch | None, hash_cache: Any = None) -> None:
        """From now on ``save()`` writes in batches (``None``: at once again);
        ``flush_saves()`` writes what is pending. ``hash_cache``: the one stat
        cache every hash of the run uses (``batch.before_write`` saves it)."""
        self._batch = batch
        self._shared_hash_cache = hash_cache

    @property
    def shared_hash_cache(self) -> Any:
        """The run's stat cache, in the process whose batch saves it; else None."""
        batch = self._batch
        return self._shared_hash_cache if batch is not None and batch.active() else None

    def flush_saves(self) -> bool:
        """Write the saves a ``SaveBatch`` deferred; True when a layer changed."""
        batch = self._batch
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
        return _sources(files, *self._read_layers(files))

    def check_sources(self, sources: Sources) -> dict[str, RegistryEntry]:
        """Compose and validate layers a writer is about to save (no overrides);
        raises the same one-line errors a load would."""
        _, entries = self._compose(sources, with_overrides=False)
        return entries

    def save(self, raw: Mapping[str, Sequence[tuple[tuple[str, ...], Any]]] | None = None) -> bool:
        """Persist what this process changed into the discovered layer
        (under a ``SaveBatch``, when the batch is due: see ``defer_saves``).

        Re-reads the layers under the lock and applies only the fields that
        differ from what this process loaded, so concurrent writers of other
        entries or fields lose nothing. Never writes the curated layer.
        ``raw`` gives values to store as written, after the changes (an
        importer's ``${paths.models}/…`` where the entry holds the resolved
        path). Returns True when a layer file changed.
        """
        for name, fields in (raw or {}).items():
            self._pending_raw.setdefault(name, []).extend(fields)
        batch = self._batch
        if batch is not None and batch.active():
            return self.flush_saves() if batch.note() else False
        return self._save_now()

    def _save_now(self) -> bool:
        if self.files is None:
            return False
        changes, removed = self._changes()
        self._removed |= removed
        refuse_duplicate_downloads(
            self.entries,
            [n for n, fields in changes.items() if any(p[0] == "download_path" for p, _ in fields)],
        )
        pending_raw, self._pending_raw = self._pending_raw, {}
        for name, fields in pending_raw.items():
            changes.setdefault(name, []).extend(fields)
        files = self.files
        with registry_lock(files.folder):
            fresh = _sources(files, *self._read_layers(files))
            disc = fresh.discovered
            curated_names = {e["name"] for e in fresh.curated.entries}
            for name in removed:
                if name in curated_names:
                    raise RegistryWriteError(
                        f"{files.curated}: entry {name!r}: curated entries are removed by "
                        "editing that file, not by tooling"
                    )
            entries = [e for e in disc.entries if e["name"] not in removed]
            index = {e["name"]: i for i, e in enumerate(entries)}
            for name, fields in changes.items():
                if name in index:
                    entry = entries[index[name]]
                else:
                    entry = {"name": name}
                    index[name] = len(entries)
                    entries.append(entry)
                for path, value in fields:
                    entry = set_path(entry, path, value)
                entries[index[name]] = entry
                self._warn_if_masked(name, fields, fresh)
            changed = write_if_changed(files.discovered, disc.style.pieces(entries))
        del changes, entries, index, fresh, disc  # a big save holds one copy less while reloading
        kept = dict(self.entries)
        deferred, self.defer_snapshot_refresh = self.defer_snapshot_refresh, True
        try:
            self.load(full=True)  # its snapshot refresh is done below, waiting
        finally:
            self.defer_snapshot_refresh = deferred
        # Callers keep using the entry objects they hold: reuse each one whose
        # content the reload confirms, so a later change to it is not lost.
        for name, entry in kept.items():
            fresh = self.entries.get(name)
            if fresh is not None and fresh.model_dump() == entry.model_dump():
                self.entries[name] = entry
        # The reload found the snapshot stale; a save has succeeded, so refresh
        # it now: a writer may wait for the lock as its save did.
        self.flush_snapshot(wait=True)
        return changed

    def _changes(self) -> tuple[dict[str, list[tuple[tuple[str, ...], Any]]], set[str]]:
        """Fields this process changed, found by diffing against a fresh
        composition of the bytes it loaded (so shared objects cannot hide a change)."""
        assert self.files is not None
        baseline = self._baseline_entries()
        changes: dict[str, list[tuple[tuple[str, ...], Any]]] = {}
        for name, entry in self.entries.items():
            if entry.name != name:
                raise RegistryWriteError(
                    f"entry {name!r}: renamed to {entry.name!r}; remove it and add a new entry"
                )
            after = entry.model_dump()
            before = baseline[name].model_dump() if name in baseline else None
            if before is None:
                changes[name] = [((key,), value) for key, value in after.items() if key != "name"]
                continue
            fields = list(_diff(before, after, ()))
            if fields:
                changes[name] = fields
        removed = set(baseline) - set(self.entries)
        return changes, removed

    def _baseline_entries(self) -> dict[str, RegistryEntry]:
        assert self.files is not None
        if self._baseline[0] == "snapshot":
            loaded = _entry_list_adapter().validate_json(self._baseline[1])
            return {entry.name: entry for entry in loaded}
        _, curated, discovered = self._baseline
        _, entries = self._compose(_sources(self.files, curated, discovered), with_overrides=True)
        return entries

    def _warn_if_masked(
        self, name: str, fields: list[tuple[tuple[str, ...], Any]], sources: Sources
    ) -> None:
        index = Sources.find(sources.curated, name)
        if index is None:
            return
        curated = sources.curated.entries[index]
        prov = sources.provenance(name, self.dynamic)
        for path, _ in fields:
            if _value_at(curated, path) is None:
                continue  # curated null is "no opinion": the discovered value shows
            if layer_of(prov, path) == CURATED and path[0] not in self.dynamic:
                print(
                    f"warning: {sources.curated.path}: entry {name!r}: {'.'.join(path)} is set "
                    "in the curated layer, which wins for static fields; the discovered "
                    "change is saved but masked",
                    file=sys.stderr,
                )

    # --- provenance ----------------------------------------------------------

    def stored(self, name: str, path: tuple[str, ...]) -> tuple[Any, Any]:
        """The value at ``path`` as written in the curated and the discovered
        layer (``None`` where a layer does not set it), before interpolation."""
        sources, _ = self._ensure_composed()
        found = []
        for layer in (sources.curated, sources.discovered):
            index = Sources.find(layer, name)
            found.append(None if index is None else _value_at(layer.entries[index], path))
        return found[0], found[1]

    def explain(self, name: str) -> dict[str, Any]:
        """Every resolved field of an entry with the layer it came from."""
        sources, composed = self._ensure_composed()  # provenance needs the layers
        entry = self.get(name)
        prov = sources.provenance(name, self.dynamic)
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
            if (
                path == ("served_model_id",)
                and value is not None
                and not clean_served_model_id(value)
            ):
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


def _value_at(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _layer_ref(layer: Layer, index: int | None) -> dict[str, Any] | None:
    return None if index is None else {"file": str(layer.path), "index": index}


def _prefixes(path: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [path[:end] for end in range(len(path), 0, -1)]


def _leaves(data: Any, path: tuple[str, ...]):
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path, data


def _diff(before: Any, after: Any, path: tuple[str, ...]):
    if isinstance(before, dict) and isinstance(after, dict):
        for key, value in after.items():
            if key not in before:
                yield (*path, key), value
            else:
                yield from _diff(before[key], value, (*path, key))
        for key in before:
            if key not in after:
                yield (*path, key), None
    elif before != after or type(before) is not type(after):
        yield path, after


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    # Parsing a large registry allocates ~10^6 objects and none of them form
    # cycles; the collector's passes over them cost ~25% of a 1,000-entry load.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _resolves_config(layer: Layer) -> bool:
    """The layer holds an interpolation that config or the environment
    resolves; text stored literally (``loader.literal``) resolves to itself."""
    from loader.literal import interpolates

    if not layer.has_interpolation:
        return False
    return any(interpolates(text) for _, text in iter_interpolated(layer.entries))


def _sources(files: LayerFiles, curated: bytes | None, discovered: bytes | None) -> Sources:
    return Sources(
        curated=layer_from_bytes(files.curated, curated),
        discovered=layer_from_bytes(files.discovered, discovered),
    )


def unknown_message(name: str, entries: Iterable[str], folder: Path | str) -> str:
    """``unknown model 'x' in FOLDER``, with close names as suggestions."""
    import difflib

    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return f"unknown model {name!r} in {folder}{hint}"


# --- the module-level API ---------------------------------------------------------

_default: Registry | None = None


def use_registry(registry: Registry | None) -> Registry | None:
    """Make ``registry`` the one the module functions use; returns the old one."""
    global _default
    previous, _default = _default, registry
    return previous


def default_registry() -> Registry:
    global _default
    if _default is None:
        _default = Registry()
    return _default


def load_registry(
    path: str | os.PathLike[str] | None = None, force: bool = False
) -> dict[str, RegistryEntry]:
    """All entries by name; re-reads the layers when one changed on disk.

    ``path`` (the ImageWorks signature) is a registry folder or a legacy
    single ``model_registry.json``; it becomes the default registry that
    ``get_entry`` and the other module functions use.
    """
    if path is not None and not isinstance(path, str | os.PathLike) or isinstance(path, bool):
        raise TypeError(
            f"load_registry(path=None, force=False): path must be a folder or a "
            f"model_registry.json file, not {path!r} (for a reload, pass force={path!r})"
        )
    if path is not None:
        from loader.registry.legacy import registry_for_path

        current = _default
        registry = registry_for_path(path, current)
        if registry is not current:
            use_registry(registry)
    registry = default_registry()
    return registry.load() if force else registry.ensure_loaded()


def get_entry(name: str) -> RegistryEntry:
    """One entry; ``KeyError`` (``UnknownModelError``) naming the model if absent."""
    return default_registry().get(name)


def list_models() -> list[RegistryEntry]:
    """All entries sorted by name."""
    entries = load_registry()
    return [entries[name] for name in sorted(entries)]


def save_registry() -> bool:
    """Persist in-memory changes to the discovered layer and the snapshot."""
    return default_registry().save()


def update_entries(entries: Iterable[RegistryEntry], save: bool = True) -> None:
    """Add or replace entries in memory, then save unless ``save=False``."""
    registry = default_registry()
    current = registry.ensure_loaded()
    for entry in entries:
        current[entry.name] = entry
    if save:
        registry.save()


def remove_entry(name: str, save: bool = True) -> None:
    """Drop a discovered-only entry (curated entries are edited by people)."""
    registry = default_registry()
    registry.get(name)
    sources, _ = registry._ensure_composed()
    if Sources.find(sources.curated, name) is not None:
        raise RegistryWriteError(
            f"{sources.curated.path}: entry {name!r}: curated entries are removed by "
            "editing that file, not by tooling"
        )
    del registry.entries[name]
    if save:
        registry.save()
