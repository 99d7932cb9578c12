"""The operations that read the registry: list, select, list-roles, metrics,
explain, snapshot, schema."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loader.errors import OverrideError
from loader.operations.results import Outcome
from loader.registry.capabilities import capability_of

if TYPE_CHECKING:
    from loader.registry.core import Registry


def short_hash(aggregate: str | None) -> str:
    return (aggregate or "")[:12]


def list_op(registry: Registry, role: str | None = None) -> list[dict[str, Any]]:
    """Every entry (or those with ``role``), sorted by name."""
    from loader.registry.hosts import host_name, last_verify

    host = host_name(registry.cfg)
    plain = registry.confirmed_snapshot()
    if plain is not None:  # the common case: plain data, no validation needed
        by_name = {data["name"]: data for data in plain}
        plain_rows = (_plain_list_row(by_name[name], host) for name in sorted(by_name))
        return [row for row in plain_rows if not role or role in row["roles"]]
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
                # this host's last verify: ok, violated (until one passes) or never
                "verify": last_verify(entry, host)["status"],
            }
        )
    return rows


# Reading a confirmed snapshot as plain data: the values were validated when
# the snapshot was confirmed, so only the schema's defaults and its lax
# coercions of these fields are applied here (tests/test_read_path.py checks
# that both paths give the same rows).
_TRUE_WORDS = {"1", "on", "t", "true", "y", "yes"}


def _part(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _lax_bool(value: Any) -> bool:
    """pydantic's lax ``bool`` for a value it accepted: ``"yes"``, ``1``, ``"off"``..."""
    if isinstance(value, str):
        return value.lower() in _TRUE_WORDS
    return bool(value)


def _plain_locked(data: dict[str, Any]) -> bool:
    return _lax_bool(_part(data, "version_lock").get("locked", False))


def _plain_hash(data: dict[str, Any]) -> str:
    return short_hash(_part(data, "artifacts").get("aggregate_sha256"))


def _plain_list_row(data: dict[str, Any], host: str) -> dict[str, Any]:
    from loader.registry.hosts import last_verify_plain

    return {
        "name": data["name"],
        "backend": data.get("backend", "vllm"),
        "locked": _plain_locked(data),
        "vision": capability_of(data.get("capabilities"), "vision"),
        "roles": list(data.get("roles") or []),
        "hash": _plain_hash(data),
        "verify": last_verify_plain(data, host)["status"],
    }


def select_op(
    registry: Registry,
    name: str | None = None,
    require: Sequence[str] = (),
    role: str | None = None,
) -> dict[str, Any]:
    """The endpoint and served id for ``name`` (or the model chosen for ``role``),
    checking capabilities."""
    from loader.registry.roles import select_by_role

    if name and role:
        raise OverrideError("select: give a model NAME or --role ROLE, not both")
    if role:
        name = select_by_role(role, require_capabilities=require, registry=registry)
    elif not name:
        raise OverrideError("select: give a model NAME or --role ROLE")
    from loader.registry.service import select_model

    return select_model(name, require_capabilities=require, registry=registry).to_json()


def list_roles_op(registry: Registry) -> list[dict[str, Any]]:
    """Each role with its models, in the order select --role prefers them."""
    from loader.registry.roles import list_roles

    return list_roles(registry)


def metrics_op(registry: Registry, name: str | None = None) -> Any:
    """Hash and lock state: a summary of all entries, or one in full."""
    from loader.registry.hosts import host_name, last_verify, last_verify_plain

    host = host_name(registry.cfg)
    if name:
        entry = registry.get(name)
        return {
            "name": name,
            "aggregate_sha256": entry.artifacts.aggregate_sha256 or "",
            "locked": entry.locked(),
            "vision_probe": entry.probes.vision,  # the last probe-vision result, or null
            "performance": entry.performance.model_dump(),  # the rolling summary
            "verify": {**last_verify(entry, host), "host": host},
        }
    plain = registry.confirmed_snapshot()
    if plain is not None:
        by_name = {data["name"]: data for data in plain}
        return [
            {
                "name": n,
                "locked": _plain_locked(by_name[n]),
                "hash": _plain_hash(by_name[n]),
                "verify": last_verify_plain(by_name[n], host)["status"],
            }
            for n in sorted(by_name)
        ]
    entries = registry.ensure_loaded()
    return [
        {
            "name": n,
            "locked": entries[n].locked(),
            "hash": short_hash(entries[n].artifacts.aggregate_sha256),
            "verify": last_verify(entries[n], host)["status"],
        }
        for n in sorted(entries)
    ]


def explain_op(
    registry: Registry,
    name: str | None = None,
    field: str | None = None,
    config_key: str | None = None,
) -> dict[str, Any]:
    """Every resolved field of ``name`` with the layer it came from (or one
    ``field``; or, with ``config_key``, which config file or override set it)."""
    if config_key:
        if name or field:
            raise OverrideError("explain: give a model NAME (and --field) or --config KEY")
        from loader.operations.config_origin import explain_config_key

        return explain_config_key(registry.cfg, config_key)
    if not name:
        raise OverrideError("explain: give a model NAME, or --config KEY")
    explained = registry.explain(name)
    if not field:
        return explained
    return explain_field(explained, field)


def explain_field(explained: dict[str, Any], field: str) -> dict[str, Any]:
    """One field of an ``explain`` result: its row, or the rows beneath it."""
    rows = explained["fields"]
    for row in rows:
        if row["field"] == field:
            return {"name": explained["name"], **row}
    below = [row for row in rows if row["field"].startswith(field + ".")]
    if below:
        return {"name": explained["name"], "field": field, "fields": below}
    import difflib

    names = [row["field"] for row in rows]
    close = difflib.get_close_matches(field, names, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise OverrideError(f"explain: model {explained['name']!r} has no field {field!r}{hint}")


def snapshot_op(registry: Registry) -> Any:
    """Regenerate ``model_registry.json`` if its content would change."""
    path = registry.layer_files().snapshot
    before = path.read_bytes() if path.exists() else None
    registry.ensure_loaded()  # a load may already refresh a stale snapshot
    registry.write_snapshot()
    after = path.read_bytes() if path.exists() else None
    result = {"snapshot": str(path), "written": after != before}
    if registry.snapshot_kept is not None:
        return Outcome(
            result,
            0,
            f"snapshot not written: this run's config differs from the default "
            f"configuration in {registry.snapshot_kept}, which the snapshot depends on; "
            "the shared snapshot is written only without such overrides",
        )
    return result


def schema_op(registry: Registry) -> dict[str, Any]:
    """Print the JSON Schema (2020-12) of a layer file."""
    from loader.upkeep.layer_schema import layer_schema

    return layer_schema()
