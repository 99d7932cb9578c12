"""The registry: layers, their composition, the snapshot, the ``Registry``.

``loader.registry`` is a documented import path (docs/api.md): the names of
:mod:`loader.registry.core` are re-exported here. ``RegistryEntry`` resolves on
first use, so reading a confirmed snapshot stays free of pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loader.registry import core as _core
from loader.registry.core import (
    Registry,
    RegistryLoadError,
    default_registry,
    get_entry,
    list_models,
    load_registry,
    remove_entry,
    save_registry,
    update_entries,
    use_registry,
)

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
    "remove_entry",
    "save_registry",
    "update_entries",
    "use_registry",
]


def __getattr__(name: str) -> Any:
    if name == "RegistryEntry":
        return _core.__getattr__(name)
    raise AttributeError(f"module 'loader.registry' has no attribute {name!r}")
