"""The ImageWorks loader's single-file mode: one legacy ``model_registry.json``.

``load_registry(path)`` takes either a registry folder or one such file. A
single file is read (and re-read when it changes) as if it were the whole
discovered layer, so its entries validate, interpolate and explain as usual;
it is never written: saving, removing an entry or writing a snapshot raise
``SingleFileReadOnly``, which asks the caller to run ``imageworks-loader
migrate`` on its folder first.
"""

from __future__ import annotations

import copy
from pathlib import Path

from loader.config import Config, load_config
from loader.errors import RegistryLoadError, RegistryWriteError
from loader.registry.compose import Sources
from loader.registry.layers import layer_from_bytes, read_layer_bytes
from loader.registry.snapshot import LayerFiles, Stat, layer_files_for, stat_stamp

__all__ = ["SingleFileLayers", "SingleFileReadOnly", "config_for_folder"]


class SingleFileReadOnly(RegistryWriteError):
    """A write to a legacy single-file registry, which is only read here."""


def config_for_folder(folder: Path) -> Config:
    """The default config with ``registry.dir`` set to ``folder``."""
    # Set registry.dir directly: a folder name may hold characters that a
    # Hydra override would need quoted.
    base = load_config()
    raw = copy.deepcopy(base.raw)
    resolved = copy.deepcopy(base.resolved)
    raw["registry"]["dir"] = resolved["registry"]["dir"] = str(folder)
    return Config(raw, resolved)


class SingleFileLayers:
    """Read one legacy file as the registry's only layer; never write it."""

    keeps_snapshot = False  # the file is the snapshot: nothing to cache or write

    def __init__(self, path: Path) -> None:
        self.single_file: Path | None = path
        self.path = path

    def files(self, cfg: Config) -> LayerFiles:
        # The folder's layer files: where ``migrate`` writes the split.
        return layer_files_for(cfg)

    def check_present(self, files: LayerFiles) -> None:
        return None  # a missing file is reported by ``missing``

    def stamp(self, files: LayerFiles) -> tuple[Stat | None, Stat | None]:
        return None, stat_stamp(self.path)

    def read(self, files: LayerFiles, max_bytes: int) -> tuple[bytes | None, bytes | None]:
        return None, read_layer_bytes(self.path, max_bytes)

    def sources(
        self, files: LayerFiles, curated: bytes | None, discovered: bytes | None
    ) -> Sources:
        # The whole file is one layer: entries validate and interpolate as usual.
        return Sources(
            curated=layer_from_bytes(self.path, None),
            discovered=layer_from_bytes(self.path, discovered),
        )

    def missing(self, files: LayerFiles) -> RegistryLoadError:
        return RegistryLoadError(f"{self.path}: registry file not found")

    def refuse_write(self, what: str | None = None) -> None:
        because = f" ({what})" if what else ""
        raise SingleFileReadOnly(
            f"{self.path}: a legacy single-file registry is read-only here{because}; split "
            f"it into layers with: imageworks-loader migrate registry.dir={self.path.parent}"
        )
