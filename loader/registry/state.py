"""What a ``Registry`` holds between calls, and where it reads its layers.

``RegistryState`` is everything a load or a save leaves behind: which files
the entries came from and their stats, the composed layers (when a load
composed them rather than reading the snapshot), the bytes a later save diffs
against, and what is pending. A ``Registry`` has exactly one; nothing else
keeps registry state.

``FolderLayers`` is how a ``Registry`` reads a registry folder (the curated
and the discovered layer, with the merged snapshot beside them as a cache).
The other way, one legacy ``model_registry.json``, is
:class:`loader.registry.legacy.SingleFileLayers`: a strategy, not a subclass,
so every operation sees the same state whichever way the layers were read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from loader.errors import RegistryLoadError
from loader.registry.compose import Composed, Sources
from loader.registry.layers import layer_from_bytes, read_layer_bytes
from loader.registry.snapshot import LayerFiles, Stat, layer_files_for, stat_stamp

if TYPE_CHECKING:
    from typing import Protocol

    from loader.config import Config
    from loader.registry.savebatch import SaveBatch

    # For type checkers only: a Protocol class costs every start its creation.
    class LayerStorage(Protocol):
        """How a ``Registry`` finds, stats, reads and (may) write its layers."""

        # The merged snapshot beside the layers is a load cache and is written.
        keeps_snapshot: bool
        # The legacy file, when the registry is one (``load_registry(path)``).
        single_file: Path | None

        def files(self, cfg: Config) -> LayerFiles: ...
        def check_present(self, files: LayerFiles) -> None: ...
        def stamp(self, files: LayerFiles) -> tuple[Stat | None, Stat | None]: ...
        def read(self, files: LayerFiles, max_bytes: int) -> tuple[bytes | None, bytes | None]: ...
        def sources(
            self, files: LayerFiles, curated: bytes | None, discovered: bytes | None
        ) -> Sources: ...
        def missing(self, files: LayerFiles) -> RegistryLoadError: ...
        def refuse_write(self, what: str | None = None) -> None: ...


# Per field path: the values to store as written (see ``Registry.save``).
RawFields = dict[str, list[tuple[tuple[str, ...], Any]]]


class Composition(NamedTuple):
    """The layers as one load read and composed them (what ``explain``,
    ``stored`` and the snapshot need)."""

    files: LayerFiles
    sources: Sources
    composed: Composed


class RegistryState:
    """The one place a ``Registry`` keeps what it loaded and what is pending.

    A plain class, not a dataclass: it is built on every start, and the
    dataclass machinery would cost a ``list`` a millisecond."""

    __slots__ = (
        "baseline",
        "batch",
        "composition",
        "files",
        "files_for",
        "pending_raw",
        "released",
        "removed",
        "shared_hash_cache",
        "snapshot_kept",
        "snapshot_pending",
        "stamp",
    )

    def __init__(self) -> None:
        # The files the entries were loaded from, and their stats at that load.
        self.files: LayerFiles | None = None
        self.stamp: tuple[Stat | None, Stat | None] | None = None
        # The composed layers; None when the load read the confirmed snapshot.
        self.composition: Composition | None = None
        # What the entries were loaded from, to tell this process's changes
        # apart: ("snapshot", bytes) or ("layers", curated bytes, discovered
        # bytes); large ones kept compressed (``packed``).
        self.baseline: tuple[Any, ...] = ()
        # The layer paths, computed once per config object.
        self.files_for: tuple[Config, LayerFiles] | None = None
        # A bulk save let the validated entries go (``save(keep_entries=False)``):
        # ``entries`` is empty, and the next ``ensure_loaded()`` reads them back.
        self.released = False
        # The last load found the snapshot stale; ``flush_snapshot`` writes it.
        self.snapshot_pending = False
        # Why the last write_snapshot() kept the snapshot as it was (a one-run
        # config override it depends on), or None.
        self.snapshot_kept: str | None = None
        # Entries this process removed (``remove_entry``): gone from the snapshot too.
        self.removed: set[str] = set()
        # Values to store as written (an importer's ``${paths.models}/…``), kept
        # until the save that writes them (a batch may defer it).
        self.pending_raw: RawFields = {}
        # Deferred saves (the pipeline), and the one stat cache its hashes share.
        self.batch: SaveBatch | None = None
        self.shared_hash_cache: Any = None

    def loaded_snapshot(self, files: LayerFiles, stamp: Any, raw: bytes) -> None:
        self.files, self.stamp, self.composition = files, stamp, None
        self.baseline = ("snapshot", packed(raw))

    def baseline_snapshot(self) -> bytes:
        """The snapshot bytes the entries were loaded from (``baseline`` is "snapshot")."""
        return unpacked(self.baseline[1]) or b""

    def loaded_layers(
        self,
        composition: Composition,
        stamp: Any,
        curated: bytes | Packed | None,
        discovered: bytes | Packed | None,
    ) -> None:
        # Packed by the caller, before composing (see ``RegistryReader._load_layers``).
        self.files, self.stamp, self.composition = composition.files, stamp, composition
        self.baseline = ("layers", curated, discovered)

    def baseline_layers(self) -> tuple[bytes | None, bytes | None]:
        """The layer bytes the entries were loaded from (``baseline`` is "layers")."""
        _, curated, discovered = self.baseline
        return unpacked(curated), unpacked(discovered)


# A layer above this size is kept compressed as a save's baseline: 10,000
# entries are 31 MB of JSON and ~1 MB compressed (zlib level 1: ~70 ms, a few
# percent of composing them), held for as long as the registry is.
PACK_ABOVE_BYTES = 8 << 20


class Packed(NamedTuple):
    """Layer bytes compressed with zlib."""

    data: bytes


def packed(data: bytes | None) -> bytes | Packed | None:
    if data is None or len(data) <= PACK_ABOVE_BYTES:
        return data
    import zlib

    return Packed(zlib.compress(data, 1))


def unpacked(data: bytes | Packed | None) -> bytes | None:
    if isinstance(data, Packed):
        import zlib

        return zlib.decompress(data.data)
    return data


class FolderLayers:
    """A registry folder: the curated and the discovered layer, and the
    merged snapshot beside them."""

    keeps_snapshot = True
    single_file: Path | None = None

    def files(self, cfg: Config) -> LayerFiles:
        return layer_files_for(cfg)

    def check_present(self, files: LayerFiles) -> None:
        if not files.folder.is_dir():
            raise RegistryLoadError(
                f"{files.folder.absolute()}: registry folder not found "
                "(set registry.dir=PATH or IMAGEWORKS_REGISTRY_DIR)"
            )

    def stamp(self, files: LayerFiles) -> tuple[Stat | None, Stat | None]:
        return stat_stamp(files.curated), stat_stamp(files.discovered)

    def read(self, files: LayerFiles, max_bytes: int) -> tuple[bytes | None, bytes | None]:
        return read_layer_bytes(files.curated, max_bytes), read_layer_bytes(
            files.discovered, max_bytes
        )

    def sources(
        self, files: LayerFiles, curated: bytes | None, discovered: bytes | None
    ) -> Sources:
        return Sources(
            curated=layer_from_bytes(files.curated, curated),
            discovered=layer_from_bytes(files.discovered, discovered),
        )

    def missing(self, files: LayerFiles) -> RegistryLoadError:
        if files.snapshot.is_file():
            return RegistryLoadError(
                f"{files.folder}: holds only {files.snapshot.name}, a legacy single-file "
                "registry; split it into layers with: imageworks-loader migrate"
            )
        return RegistryLoadError(
            f"{files.folder}: no registry layers ({files.curated.name} or "
            f"{files.discovered.name}) in this folder"
        )

    def refuse_write(self, what: str | None = None) -> None:
        return None  # a folder's layers are written under its lock
