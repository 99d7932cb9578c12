"""The merged snapshot as a load cache: when may it stand in for the layers?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from loader.config import Config, cache_dir, registry_dir, write_cache_file
from loader.fileio import Fingerprint, key_digest
from loader.registry.compose import RULES_VERSION, DynamicFields

Stat = Fingerprint


# A named tuple, not a dataclass: `list` imports this, and importing
# dataclasses (with inspect) costs it ~8 ms on Python 3.11.
class LayerFiles(NamedTuple):
    """Where one registry's three files are."""

    folder: Path
    curated: Path
    discovered: Path
    snapshot: Path


def layer_files_for(cfg: Config) -> LayerFiles:
    """Where the registry that ``cfg`` names keeps its three files."""
    folder = registry_dir(cfg)
    return LayerFiles(
        folder=folder,
        curated=folder / str(cfg.get("registry.curated")),
        discovered=folder / str(cfg.get("registry.discovered")),
        snapshot=folder / str(cfg.get("registry.snapshot")),
    )


def stat_stamp(path: Path) -> Stat | None:
    """What changes whenever a file's content may have (``loader.fileio.Fingerprint``)."""
    return Fingerprint.of_path(path)


class SnapshotStamps:
    """When the snapshot may stand in for the layers.

    After this process wrote (or confirmed) the snapshot as the composition of
    the current layers, it records the three files' stats, keyed by folder, in
    the user's cache. A later load whose stats all still match reads the
    snapshot instead of merging. Any change to any file (stat differs) or to
    the composition rules (fingerprint differs) sends loads back to the layers.
    """

    def __init__(self, files: LayerFiles, dynamic: DynamicFields) -> None:
        self.files = files
        key = key_digest(str(files.folder.resolve()))
        self.path = cache_dir() / "snapshots" / f"{key}.json"
        rules = [RULES_VERSION, sorted(dynamic.exact), sorted(dynamic.prefixes)]
        rules += [files.curated.name, files.discovered.name, files.snapshot.name]
        self.fingerprint = key_digest(json.dumps(rules))

    def current(self) -> tuple[Any, ...]:
        files = self.files
        return (
            stat_stamp(files.curated),
            stat_stamp(files.discovered),
            stat_stamp(files.snapshot),
        )

    def _saved_stats(self) -> list[Any] | None:
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("fingerprint") != self.fingerprint:
            return None
        stats = saved.get("stats")
        return stats if isinstance(stats, list) and len(stats) == 3 else None

    def matches(self, stats: tuple[Any, ...]) -> bool:
        if stats[2] is None:
            return False
        return [list(s) if s else None for s in stats] == self._saved_stats()

    def snapshot_unchanged(self) -> bool:
        """True when the snapshot is still the file this loader last wrote or
        confirmed (so nobody can have added entries to it by hand)."""
        current = stat_stamp(self.files.snapshot)
        saved = self._saved_stats()
        return current is not None and saved is not None and saved[2] == list(current)

    def record(self) -> None:
        stats = [list(s) if s else None for s in self.current()]
        write_cache_file(self.path, {"fingerprint": self.fingerprint, "stats": stats})
