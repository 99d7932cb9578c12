"""The operations that edit the layer files: audit (--fix), set, unset,
promote, demote."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loader.errors import EXIT_USAGE
from loader.operations.results import Text

if TYPE_CHECKING:
    from loader.registry.core import Registry


def audit_op(
    registry: Registry,
    names: Sequence[str] = (),
    fix: bool = False,
    dry_run: bool = False,
) -> Text:
    """Check the registry for common mistakes; print findings as JSON Lines."""
    from loader.upkeep.audit import ERROR, audit_registry, findings_text

    findings, diff = audit_registry(registry, _words(names), fix=bool(fix), dry_run=bool(dry_run))
    if dry_run:
        return Text(diff)
    errors = [f for f in findings if f.severity == ERROR and not f.fixed]
    if not errors:
        return Text(findings_text(findings))
    message = f"{len(errors)} error(s): " + ", ".join(f"{f.code} {f.entry!r}" for f in errors)
    return Text(findings_text(findings), EXIT_USAGE, message)


def set_op(
    registry: Registry,
    name: str,
    assignments: Sequence[str] = (),
    layer: str | None = None,
    dry_run: bool = False,
) -> Any:
    """Set fields of an entry in a layer file (curated by default), checked first."""
    from loader.upkeep.fields import set_fields

    return _edit_result(set_fields(registry, name, _words(assignments), layer, bool(dry_run)))


def unset_op(
    registry: Registry,
    name: str,
    fields: Sequence[str] = (),
    layer: str | None = None,
    dry_run: bool = False,
) -> Any:
    """Remove fields of an entry from a layer file (curated by default)."""
    from loader.upkeep.fields import unset_fields

    return _edit_result(unset_fields(registry, name, _words(fields), layer, bool(dry_run)))


def promote_op(
    registry: Registry, name: str, fields: Sequence[str] = (), dry_run: bool = False
) -> Any:
    """Pin discovered values of static fields into the curated layer."""
    from loader.upkeep.fields import promote

    return _edit_result(promote(registry, name, _words(fields), bool(dry_run)))


def demote_op(
    registry: Registry, name: str, fields: Sequence[str] = (), dry_run: bool = False
) -> Any:
    """Unpin curated static fields (moved to the discovered layer where it has none)."""
    from loader.upkeep.fields import demote

    return _edit_result(demote(registry, name, _words(fields), bool(dry_run)))


def _words(value: Any) -> list[str]:
    """A list argument; one word given alone (``fields=x`` in a Hydra app) is a list of one."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _edit_result(result: dict[str, Any]) -> Any:
    # A dry run prints the diff for a person; otherwise what changed, as JSON.
    return Text(result["diff"]) if result.get("dry_run") else result
