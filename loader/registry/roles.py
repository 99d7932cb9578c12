"""Roles, as the ImageWorks loader has them: which models serve a role, and
which one to pick.

``select_by_role`` resolves a role in the ImageWorks order: the role's default
capabilities (config ``roles.default_capabilities``) plus the caller's; then
the first usable name in ``preferred``; then the usable entry with the highest
``role_priority[role]`` (default 0; ties go to the first name in sort order);
else ``CapabilityError``. Usable: carries the role, is not deprecated, and has
every required capability.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from loader.errors import CapabilityError
from loader.registry.core import Registry, default_registry
from loader.registry.schema import CANONICAL_CAPABILITIES, RegistryEntry
from loader.registry.service import missing_capability

__all__ = ["list_models_for_role", "list_roles", "required_capabilities", "select_by_role"]


def required_capabilities(
    role: str, extra: Iterable[str] | None = None, registry: Registry | None = None
) -> list[str]:
    """The role's default capabilities, then the caller's, without repeats."""
    registry = registry or default_registry()
    defaults = (registry.cfg.get("roles.default_capabilities") or {}).get(role) or []
    wanted: list[str] = []
    for name in [*defaults, *(extra or ())]:
        if name not in wanted:
            wanted.append(name)
    return wanted


def _carries(entry: RegistryEntry, role: str) -> bool:
    return role in entry.roles and not entry.deprecated


def list_models_for_role(role: str, registry: Registry | None = None) -> list[str]:
    """Sorted names of the entries carrying ``role``, deprecated ones excluded."""
    entries = (registry or default_registry()).ensure_loaded()
    return sorted(name for name, entry in entries.items() if _carries(entry, role))


def _by_priority(entries: dict[str, RegistryEntry], names: Iterable[str], role: str) -> list[str]:
    # Highest role_priority first; equal priorities keep name order (sorted is stable).
    return sorted(sorted(names), key=lambda n: -entries[n].role_priority.get(role, 0))


def select_by_role(
    role: str,
    require_capabilities: Sequence[str] | None = None,
    preferred: Sequence[str] | None = None,
    *,
    registry: Registry | None = None,
) -> str:
    """The name of the model to use for ``role`` (see the module docstring)."""
    registry = registry or default_registry()
    entries = registry.ensure_loaded()
    wanted = required_capabilities(role, require_capabilities, registry)

    def usable(name: str) -> bool:
        entry = entries.get(name)
        return (
            entry is not None
            and _carries(entry, role)
            and missing_capability(entry, wanted) is None
        )

    for name in preferred or ():
        if usable(name):
            return name
    candidates = [name for name in list_models_for_role(role, registry) if usable(name)]
    if candidates:
        return _by_priority(entries, candidates, role)[0]
    raise CapabilityError(f"No model found for role {role!r} meeting capabilities {wanted}")


def list_roles(registry: Registry | None = None) -> list[dict[str, Any]]:
    """One row per (role, model): roles in name order, each role's models in
    the order ``select_by_role`` prefers them (``role_priority``, then name)."""
    registry = registry or default_registry()
    entries = registry.ensure_loaded()
    roles = sorted({role for entry in entries.values() for role in entry.roles})
    rows = []
    for role in roles:
        for name in _by_priority(entries, list_models_for_role(role, registry), role):
            entry = entries[name]
            rows.append(
                {
                    "role": role,
                    "name": name,
                    "priority": entry.role_priority.get(role, 0),
                    "backend": entry.backend,
                    "display_name": entry.display_name or name,
                    "capabilities": [c for c in CANONICAL_CAPABILITIES if entry.has_capability(c)],
                }
            )
    return rows
