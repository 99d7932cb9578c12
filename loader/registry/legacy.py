"""Registries given by path, as ImageWorks callers pass them to ``load_registry``.

A path is either a registry folder (the layered files) or one legacy
``model_registry.json``, the ImageWorks loader's single-file mode. A single
file is read (and re-read when it changes) but never written: saving asks
the caller to run ``imageworks-loader migrate`` on its folder first.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from loader.config import Config, load_config
from loader.errors import RegistryLoadError, RegistryWriteError
from loader.registry.compose import Sources
from loader.registry.core import Registry
from loader.registry.layers import layer_from_bytes, read_layer_bytes
from loader.registry.schema import RegistryEntry
from loader.registry.snapshot import stat_stamp

__all__ = ["SingleFileRegistry", "registry_for_path"]


def _config_for_folder(folder: Path) -> Config:
    # Set registry.dir directly: a folder name may hold characters that a
    # Hydra override would need quoted.
    base = load_config()
    raw = copy.deepcopy(base.raw)
    resolved = copy.deepcopy(base.resolved)
    raw["registry"]["dir"] = resolved["registry"]["dir"] = str(folder)
    return Config(raw, resolved)


class SingleFileRegistry(Registry):
    """A legacy single-file registry: one JSON list of full entries, read-only."""

    def __init__(self, path: Path) -> None:
        super().__init__(_config_for_folder(path.parent))
        self.path = path
        self._file_stamp: object = None

    def is_stale(self) -> bool:
        return self._file_stamp is None or self._file_stamp != stat_stamp(self.path)

    def load(self, *, full: bool = False) -> dict[str, RegistryEntry]:
        stamp = stat_stamp(self.path)
        raw = read_layer_bytes(self.path)
        if raw is None:
            raise RegistryLoadError(f"{self.path}: registry file not found")
        # The whole file is one layer: entries validate and interpolate as usual.
        sources = Sources(
            curated=layer_from_bytes(self.path, None),
            discovered=layer_from_bytes(self.path, raw),
        )
        _, entries = self._compose(sources, with_overrides=True)
        self._file_stamp = stamp
        self._replace_entries(entries)
        return self.entries

    def save(self) -> bool:
        raise RegistryWriteError(
            f"{self.path}: a legacy single-file registry is read-only here; split it into "
            f"layers with: imageworks-loader migrate registry.dir={self.path.parent}"
        )


def registry_for_path(path: str | os.PathLike[str], current: Registry | None) -> Registry:
    """The registry at ``path``: ``current`` when it already is that one."""
    target = Path(path).expanduser()
    if target.is_file():
        if isinstance(current, SingleFileRegistry) and current.path.resolve() == target.resolve():
            return current
        return SingleFileRegistry(target)
    if not target.is_dir():
        raise RegistryLoadError(
            f"{target.absolute()}: not found (expected a registry folder or a "
            "model_registry.json file)"
        )
    if (
        current is not None
        and not isinstance(current, SingleFileRegistry)
        and current.layer_files().folder.resolve() == target.resolve()
    ):
        return current
    return Registry(_config_for_folder(target))
