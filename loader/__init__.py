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
from typing import Any

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

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loader' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
