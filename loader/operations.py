"""The operations behind every front door (CLI, Hydra apps, doit tasks).

Each takes a ``Registry`` and typed arguments and returns JSON-ready data;
none prints or exits. ``OPERATIONS`` lists them with the arguments they read,
which the front doors use to translate their own arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import OverrideError
from .registry import Registry
from .service import select_model


def short_hash(aggregate: str | None) -> str:
    return (aggregate or "")[:12]


def list_op(registry: Registry, role: str | None = None) -> list[dict[str, Any]]:
    """Every entry (or those with ``role``), sorted by name."""
    entries = registry.ensure_loaded()
    rows = []
    for name in sorted(entries):
        entry = entries[name]
        if role and role not in entry.roles:
            continue
        rows.append(
            {
                "name": name,
                "backend": entry.backend,
                "locked": entry.locked(),
                "vision": entry.has_capability("vision"),
                "roles": list(entry.roles),
                "hash": short_hash(entry.artifacts.aggregate_sha256),
            }
        )
    return rows


def select_op(registry: Registry, name: str, require: Sequence[str] = ()) -> dict[str, Any]:
    """The endpoint and served id for ``name``, checking capabilities."""
    return select_model(name, require_capabilities=require, registry=registry).to_json()


def metrics_op(registry: Registry, name: str | None = None) -> Any:
    """Hash and lock state: a summary of all entries, or one in full."""
    if name:
        entry = registry.get(name)
        return {
            "name": name,
            "aggregate_sha256": entry.artifacts.aggregate_sha256 or "",
            "locked": entry.locked(),
        }
    entries = registry.ensure_loaded()
    return [
        {
            "name": n,
            "locked": entries[n].locked(),
            "hash": short_hash(entries[n].artifacts.aggregate_sha256),
        }
        for n in sorted(entries)
    ]


def explain_op(registry: Registry, name: str) -> dict[str, Any]:
    """Every resolved field of ``name`` with the layer it came from."""
    return registry.explain(name)


def snapshot_op(registry: Registry) -> dict[str, Any]:
    """Regenerate ``model_registry.json`` if its content would change."""
    registry.ensure_loaded()
    written = registry.write_snapshot()
    assert registry.files is not None
    return {"snapshot": str(registry.files.snapshot), "written": written}


@dataclass(frozen=True)
class Operation:
    name: str
    run: Callable[..., Any]
    # Argument names, as they appear in the config (``name=...``) and on the CLI.
    arguments: tuple[str, ...] = ()
    required: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0]

    def call(self, registry: Registry, arguments: dict[str, Any]) -> Any:
        for key in self.required:
            if arguments.get(key) in (None, ""):
                raise OverrideError(f"{self.name}: missing argument {key!r}")
        return self.run(registry, **{k: arguments.get(k) for k in self.arguments if k in arguments})


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("list", list_op, ("role",)),
        Operation("select", select_op, ("name", "require"), ("name",)),
        Operation("metrics", metrics_op, ("name",)),
        Operation("explain", explain_op, ("name",), ("name",)),
        Operation("snapshot", snapshot_op),
    )
}
