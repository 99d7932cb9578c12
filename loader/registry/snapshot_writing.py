"""Writing the merged snapshot, ``model_registry.json``, for legacy readers.

The snapshot is what the layers compose to without ``--set`` overrides. It is
shared, so it is never written with values only one run sees (a config
override it depends on, ``loader.registry.one_run``), never over entries
added to it by hand (``migrate`` adopts those first), and, once written or
confirmed, its stats are recorded so later loads may read it instead of
composing the layers (``loader.registry.snapshot.SnapshotStamps``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from loader.config import load_config
from loader.errors import RegistryError, RegistryWriteError
from loader.registry.compose import Sources, iter_interpolated
from loader.registry.layers import LOCK_TIMEOUT_S, file_holds, registry_lock, write_if_changed
from loader.registry.reading import RegistryReader
from loader.registry.snapshot import LayerFiles, SnapshotStamps, interpolation_inputs
from loader.registry.snapshot_record import snapshot_only_names

__all__ = ["SnapshotWriter"]


class SnapshotWriter(RegistryReader):
    """The part of ``Registry`` that writes the merged snapshot."""

    def snapshot_pieces(self) -> Iterator[bytes]:
        """The snapshot's bytes for the layers as loaded (no overrides)."""
        composition = self.ensure_composed()
        sources, composed = composition.sources, composition.composed
        if composed.overridden:
            composed, _ = self.compose_sources(sources, with_overrides=False)
        style = sources.discovered.style if sources.discovered.exists else sources.curated.style
        return style.pieces([composed.merged[name] for name in composed.order])

    def snapshot_text(self) -> str:
        return b"".join(self.snapshot_pieces()).decode("utf-8")

    def write_snapshot(self, *, only_if_layers_unchanged: bool = False, wait: bool = True) -> bool:
        """Write ``model_registry.json`` if its content would change.

        Returns True when the file was rewritten. Records the stamps that let
        later loads read the snapshot instead of composing the layers.
        ``wait=False`` raises ``RegistryLockBusy`` at once if another process
        holds the registry lock. A single-file registry raises
        ``SingleFileReadOnly``: its file is the snapshot, and is never written.
        """
        self.storage.refuse_write("the file is its own snapshot")
        composition = self.ensure_composed()
        files, sources = composition.files, composition.sources
        self.state.snapshot_pending = False  # whatever happens next, this load's refresh is done
        self.state.snapshot_kept = self._one_run_difference(sources)
        if self.state.snapshot_kept is not None:
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
            if not unchanged and snapshot_only_names(files.snapshot, sources, self.state.removed):
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
        from loader.registry.snapshot_record import snapshot_sha256, write_record

        composed = self.ensure_composed().composed
        sha = snapshot_sha256(snapshot)
        if sha is not None:
            write_record(snapshot, sha, list(composed.order))

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
        return self.storage.stamp(files) != self.state.stamp

    def _record_stamps(self, files: LayerFiles, sources: Sources) -> None:
        # Never reloads: this runs under the registry lock.
        texts = [
            text
            for layer in (sources.curated, sources.discovered)
            if layer.has_interpolation
            for _, text in iter_interpolated(layer.entries)
        ]
        reads = interpolation_inputs(texts)
        if reads is None:
            return  # another resolver (a time, a custom one): never a cache
        if not self._layers_changed(files):
            SnapshotStamps(files, self.dynamic, self.cfg).record(reads)
