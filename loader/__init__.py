"""imageworks-loader: a deterministic, layered model registry.

The public API, importable from here or from its module:

- ``loader.registry``: ``load_registry``, ``get_entry``, ``list_models``,
  ``save_registry``, ``update_entries``, ``remove_entry``, ``Registry``;
- ``loader.service``: ``select_model``, ``SelectedModel``;
- ``loader.roles``: ``select_by_role``, ``list_models_for_role``;
- ``loader.hashing`` / ``loader.locks``: ``verify_model``, ``lock_model``,
  ``unlock_model``;
- ``loader.orchestrator``: ``activate``, ``deactivate``, ``current`` (the one
  vLLM server on the canonical port);
- ``loader.probe``: ``run_vision_probe``, ``ProbeResult``;
- ``loader.schema``: ``RegistryEntry``; ``loader.errors``: the error classes.

Names resolve on first use, so ``import loader`` stays cheap for the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time names load lazily
    from .config import load_config
    from .errors import (
        CapabilityError,
        RegistryError,
        RegistryLoadError,
        UnknownModelError,
        VersionLockViolation,
    )
    from .integrity.version_locks import lock_model, unlock_model, verify_model
    from .probe import ProbeResult, run_vision_probe
    from .registry import (
        Registry,
        get_entry,
        list_models,
        load_registry,
        remove_entry,
        save_registry,
        update_entries,
    )
    from .registry.roles import list_models_for_role, select_by_role
    from .registry.schema import RegistryEntry
    from .registry.service import SelectedModel, select_model

_EXPORTS = {
    "load_registry": "registry",
    "get_entry": "registry",
    "list_models": "registry",
    "save_registry": "registry",
    "update_entries": "registry",
    "remove_entry": "registry",
    "Registry": "registry",
    "select_model": "service",
    "SelectedModel": "service",
    "select_by_role": "roles",
    "list_models_for_role": "roles",
    "verify_model": "locks",
    "lock_model": "locks",
    "unlock_model": "locks",
    "run_vision_probe": "probe",
    "ProbeResult": "probe",
    "RegistryEntry": "schema",
    "RegistryError": "errors",
    "RegistryLoadError": "errors",
    "CapabilityError": "errors",
    "UnknownModelError": "errors",
    "VersionLockViolation": "errors",
    "load_config": "config",
}

__all__ = [
    "CapabilityError",
    "ProbeResult",
    "Registry",
    "RegistryEntry",
    "RegistryError",
    "RegistryLoadError",
    "SelectedModel",
    "UnknownModelError",
    "VersionLockViolation",
    "get_entry",
    "list_models",
    "list_models_for_role",
    "load_config",
    "load_registry",
    "lock_model",
    "remove_entry",
    "run_vision_probe",
    "save_registry",
    "select_by_role",
    "select_model",
    "unlock_model",
    "update_entries",
    "verify_model",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loader' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
