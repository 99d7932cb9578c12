"""A ``Registry`` read: its state, loading, reloading on change, composing.

A load reads the confirmed snapshot when it may stand in for the layers
(``loader.registry.loading``), else reads the layers through the registry's
storage strategy (a folder, or one legacy file: ``loader.registry.state``,
``loader.registry.legacy``) and composes and validates them. ``Registry``
(``loader.registry.registry``) adds saving and writing the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loader import logs
from loader.config import Config, load_config
from loader.errors import RegistryWriteError, UnknownModelError
from loader.registry.compose import (
    Composed,
    DynamicFields,
    Interpolator,
    Sources,
    compose,
    parse_entry_overrides,
    validate,
)
from loader.registry.layers import DEFAULT_MAX_LAYER_BYTES, RegistryLockBusy
from loader.registry.loading import (
    confirmed_snapshot_bytes,
    gc_paused,
    parse_entries,
    plain_entries,
)
from loader.registry.snapshot import LayerFiles, SnapshotStamps, stat_stamp
from loader.registry.state import Composition, FolderLayers, RegistryState, packed

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from loader.registry.schema import RegistryEntry
    from loader.registry.state import LayerStorage

__all__ = ["RegistryReader", "unknown_message"]


class RegistryReader:
    """A registry composed with one config and one set of overrides: its
    state, and reading it (``Registry`` adds saving and the snapshot)."""

    def __init__(
        self,
        cfg: Config | DictConfig | None = None,
        entry_overrides: Sequence[str] = (),
        *,
        defer_snapshot_refresh: bool = False,
        reference_cfg: Config | None = None,
        storage: LayerStorage | None = None,
    ) -> None:
        """``defer_snapshot_refresh``: a load that finds the snapshot stale only
        notes it; ``flush_snapshot()`` writes it (front doors call it once the
        operation succeeded, so a refused command changes no file).

        ``reference_cfg``: the default configuration, which a run composed
        with overrides compares itself with before writing the shared snapshot
        (``loader.one_run``); composed on demand when not given.

        ``storage``: how the layers are read (default: the folder ``registry.dir``)."""
        if cfg is None:
            cfg = load_config()
        elif not isinstance(cfg, Config):
            cfg = Config.from_omegaconf(cfg)
        self.cfg: Config = cfg
        self.storage: LayerStorage = storage if storage is not None else FolderLayers()
        self.dynamic = DynamicFields(self.cfg.get("registry.dynamic_fields"))
        configured = self.cfg.get("entry_overrides") or []
        self.entry_override_texts = [*configured, *entry_overrides]
        self.entries: dict[str, RegistryEntry] = {}
        self.defer_snapshot_refresh = defer_snapshot_refresh
        self.reference_cfg = reference_cfg
        self.state = RegistryState()
        # Views derived from the loaded entries (``select_model``'s index),
        # built on first use and dropped whenever the entries are (re)loaded.
        self.prepared: dict[str, Any] = {}

    # --- what the state holds, by its public names ------------------------------

    @property
    def files(self) -> LayerFiles | None:
        """The files the entries were loaded from (None before a load)."""
        return self.state.files

    @property
    def snapshot_kept(self) -> str | None:
        """Why the last ``write_snapshot()`` kept the snapshot as it was, or None."""
        return self.state.snapshot_kept

    @property
    def single_file(self) -> Path | None:
        """The legacy ``model_registry.json`` this registry reads, or None."""
        return self.storage.single_file

    # What tests look at: the composed layers (None when the snapshot was
    # read), and what the entries were loaded from.
    @property
    def _sources(self) -> Sources | None:
        composition = self.state.composition
        return None if composition is None else composition.sources

    @property
    def _baseline(self) -> tuple[Any, ...]:
        return self.state.baseline

    # --- reading -------------------------------------------------------------

    def layer_files(self) -> LayerFiles:
        """The three files' paths, computed once per config (the hot path stats them)."""
        cached = self.state.files_for
        if cached is None or cached[0] is not self.cfg:
            cached = self.state.files_for = (self.cfg, self.storage.files(self.cfg))
        return cached[1]

    def max_layer_bytes(self) -> int:
        return int(self.cfg.get("registry.max_layer_bytes") or DEFAULT_MAX_LAYER_BYTES)

    def is_stale(self) -> bool:
        """True when never loaded, or a layer file changed since the load."""
        loaded = self.state.files
        if self.state.stamp is None or loaded is None:
            return True
        files = self.layer_files()
        if files is not loaded and files != loaded:
            return True
        return self.state.stamp != self.storage.stamp(files)

    def load(
        self, *, full: bool = False, reuse: Mapping[str, RegistryEntry] | None = None
    ) -> dict[str, RegistryEntry]:
        """Read, compose and validate the registry (always from disk).

        When the snapshot is known to be what the current layers compose to
        (see ``SnapshotStamps``), it is read instead: one parse and
        validation in pydantic's core, no merge. ``full=True`` always composes
        the layers, keeping what ``explain`` needs; ``reuse``: see ``validate``.
        """
        if not full and self._snapshot_may_stand_in():
            with gc_paused():
                files = self.layer_files()
                self.storage.check_present(files)
                if self._load_snapshot(files):
                    return self.entries
        self._load_layers(reuse)
        return self.entries

    def _snapshot_may_stand_in(self) -> bool:
        return self.storage.keeps_snapshot and not self.entry_override_texts

    def confirmed_snapshot(self) -> list[dict[str, Any]] | None:
        """The merged snapshot as plain data when it may stand in for the
        layers, else None (then ``load()`` composes and validates them).

        It may when no ``--set`` override applies and all three files are
        unchanged since this loader wrote or confirmed the snapshot as the
        composition of those layers, which was validated then: so no pydantic,
        no merge, no OmegaConf. Any edit to a layer changes its stat, and the
        next read composes and validates it again. Leaves ``entries`` as they are.
        """
        if not self._snapshot_may_stand_in():
            return None
        found = confirmed_snapshot_bytes(
            self.layer_files(), self.dynamic, self.max_layer_bytes(), self.cfg
        )
        return None if found is None else plain_entries(found[0])

    def _load_snapshot(self, files: LayerFiles) -> bool:
        found = confirmed_snapshot_bytes(files, self.dynamic, self.max_layer_bytes(), self.cfg)
        if found is None:
            return False
        raw, stats = found
        from pydantic import ValidationError

        try:
            entries = parse_entries(raw)
        except ValidationError:
            return False
        self.state.loaded_snapshot(files, stats[:2], raw)
        self._replace_entries(entries)
        return True

    def _load_layers(
        self, reuse: Mapping[str, RegistryEntry] | None = None, *, keep: bool = True
    ) -> Composition:
        with gc_paused():
            files = self.layer_files()
            self.storage.check_present(files)
            stamp = self.storage.stamp(files)
            curated_bytes, discovered_bytes = self.storage.read(files, self.max_layer_bytes())
            if curated_bytes is None and discovered_bytes is None:
                raise self.storage.missing(files)
            sources = self.storage.sources(files, curated_bytes, discovered_bytes)
            # Kept for a save's diff; large ones compressed now, before composing.
            kept = packed(curated_bytes), packed(discovered_bytes)
            del curated_bytes, discovered_bytes
            composed, entries = self.compose_sources(
                sources, with_overrides=True, reuse=reuse, keep=keep
            )
            composition = Composition(files, sources, composed)
            self.state.loaded_layers(composition, stamp, *kept)
            if keep:
                self._replace_entries(entries)
            else:
                self._release_entries()
        if self.storage.keeps_snapshot and self.cfg.get("registry.refresh_snapshot_on_load"):
            stats = (*stamp, stat_stamp(files.snapshot))
            if not SnapshotStamps(files, self.dynamic, self.cfg).matches(stats):
                self.state.snapshot_pending = True
                if not self.defer_snapshot_refresh:
                    self.flush_snapshot()
        return composition

    def flush_snapshot(self, *, wait: bool = False) -> None:
        """Refresh a snapshot that the last load found out of date.

        A read never waits on a writer: unless ``wait`` (a writer refreshing
        after its own save), a busy registry lock skips the refresh with one
        line on stderr; the layers were read directly, so nothing is wrong.
        """
        if not self.state.snapshot_pending or self.state.composition is None:
            return
        try:
            self.write_snapshot(only_if_layers_unchanged=True, wait=wait)
        except RegistryLockBusy as exc:
            logs.warning(__name__, f"snapshot not refreshed: {exc}; the layers were read directly")
        except RegistryWriteError as exc:
            # A read-only registry is still readable; say why its snapshot is old.
            logs.warning(__name__, f"snapshot not refreshed: {exc}")

    def discard_snapshot_refresh(self) -> None:
        """Forget that the last load found the snapshot stale (a dry run must
        not write even that)."""
        self.state.snapshot_pending = False

    def _replace_entries(self, fresh: dict[str, RegistryEntry]) -> None:
        # In place, so a caller's ``entries = load_registry()`` stays current.
        self.entries.clear()
        self.entries.update(fresh)
        self.prepared.clear()
        self.state.released = False

    def _release_entries(self) -> None:
        # After a bulk save (an import): the layers were validated, and the
        # entries are read back when next asked for (``ensure_loaded``).
        self.entries.clear()
        self.prepared.clear()
        self.state.released = True

    def ensure_loaded(self) -> dict[str, RegistryEntry]:
        if not self.state.released and not self.is_stale():
            return self.entries
        batch = self.state.batch
        if batch is not None and batch.pending and batch.active():
            self.flush_saves()  # merges this run's changes with the edit, then reloads
            return self.entries
        return self.load()

    def ensure_composed(self) -> Composition:
        """The layers as composed by a load (composing them now if the last
        load read the snapshot, or a layer changed since)."""
        composition = self.state.composition
        if composition is None or self.is_stale():
            composition = self._load_layers()
        return composition

    def compose_sources(
        self,
        sources: Sources,
        *,
        with_overrides: bool,
        reuse: Mapping[str, RegistryEntry] | None = None,
        keep: bool = True,
    ) -> tuple[Composed, dict[str, RegistryEntry]]:
        """Compose and validate ``sources`` with this registry's config (and
        its ``--set`` overrides when ``with_overrides``); raises the one-line
        errors a load would. ``keep=False``: validate only (no entries returned)."""
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
        return composed, validate(composed, sources, self.dynamic, reuse, keep=keep)

    def get(self, name: str) -> RegistryEntry:
        entries = self.ensure_loaded()
        try:
            return entries[name]
        except KeyError:
            folder = self.files.folder if self.files else "?"
            raise UnknownModelError(unknown_message(name, entries, folder)) from None

    # --- provided by the parts that write (``Registry`` has them all) ----------

    def write_snapshot(self, *, only_if_layers_unchanged: bool = False, wait: bool = True) -> bool:
        raise NotImplementedError  # loader.registry.snapshot_writing.SnapshotWriter

    def flush_saves(self) -> bool:
        raise NotImplementedError  # loader.registry.saving.RegistryWriter


def unknown_message(name: str, entries: Iterable[str], folder: Path | str) -> str:
    """``unknown model 'x' in FOLDER``, with close names as suggestions."""
    import difflib

    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return f"unknown model {name!r} in {folder}{hint}"
