"""The public registry API: load (cached, reloads on change), get, list, save.

Names follow the ImageWorks loader so its users can switch: ``load_registry``,
``get_entry``, ``list_models``, ``save_registry``, ``RegistryLoadError``.
State lives in ``Registry`` objects (:mod:`loader.registry.registry`); the
module functions use one default instance, which ``use_registry`` replaces
(tests and the CLI do).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loader.errors import RegistryLoadError, RegistryWriteError
from loader.registry.compose import Sources
from loader.registry.registry import Registry, unknown_message

if TYPE_CHECKING:
    from loader.registry.schema import RegistryEntry

__all__ = [
    "Registry",
    "RegistryEntry",
    "RegistryLoadError",
    "default_registry",
    "get_entry",
    "list_models",
    "load_registry",
    "registry_for_path",
    "remove_entry",
    "save_registry",
    "unknown_message",
    "update_entries",
    "use_registry",
]


def __getattr__(name: str) -> Any:
    # ``RegistryEntry`` is importable from here, but pydantic is imported only
    # when it is used: a ``list`` served from a confirmed snapshot needs none.
    if name == "RegistryEntry":
        from loader.registry.schema import RegistryEntry

        return RegistryEntry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def registry_for_path(path: str | os.PathLike[str], current: Registry | None) -> Registry:
    """The registry at ``path`` (a folder, or one legacy ``model_registry.json``):
    ``current`` when it already is that one."""
    # Only a caller that passes a path needs the legacy module: not on the read path.
    from loader.registry.legacy import SingleFileLayers, config_for_folder

    target = Path(path).expanduser()
    if target.is_file():
        single = current.single_file if current is not None else None
        if current is not None and single is not None and single.resolve() == target.resolve():
            return current
        return Registry(config_for_folder(target.parent), storage=SingleFileLayers(target))
    if not target.is_dir():
        raise RegistryLoadError(
            f"{target.absolute()}: not found (expected a registry folder or a "
            "model_registry.json file)"
        )
    if (
        current is not None
        and current.single_file is None
        and current.layer_files().folder.resolve() == target.resolve()
    ):
        return current
    return Registry(config_for_folder(target))


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
    """Drop a discovered-only entry (curated entries are edited by people).

    On a legacy single-file registry, ``save=True`` raises
    ``SingleFileReadOnly`` before anything changes; ``save=False`` drops the
    entry in memory only."""
    registry = default_registry()
    registry.get(name)
    if save:
        registry.check_writable()
    sources: Sources = registry.ensure_composed().sources
    if Sources.find(sources.curated, name) is not None:
        raise RegistryWriteError(
            f"{sources.curated.path}: entry {name!r}: curated entries are removed by "
            "editing that file, not by tooling"
        )
    del registry.entries[name]
    if save:
        registry.save()
