"""The operations behind every front door (CLI, Hydra apps, doit tasks).

Each takes a ``Registry`` and typed arguments and returns JSON-ready data;
none prints or exits. ``OPERATIONS`` lists them with the arguments they read,
which the front doors use to translate their own arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loader.errors import EXIT_USAGE, OverrideError
from loader.registry.capabilities import capability_of

if TYPE_CHECKING:
    from loader.registry.core import Registry


@dataclass
class Outcome:
    """A result to print plus a non-zero exit code (e.g. ``verify --all``
    printing every entry's result, then failing if any lock was violated)."""

    data: Any
    exit_code: int
    message: str = ""


@dataclass
class Text:
    """Output printed as it is (JSON Lines, a table for a person, a diff),
    with its exit code and any lines for stderr."""

    text: str
    exit_code: int = 0
    message: str = ""


def short_hash(aggregate: str | None) -> str:
    return (aggregate or "")[:12]


def list_op(registry: Registry, role: str | None = None) -> list[dict[str, Any]]:
    """Every entry (or those with ``role``), sorted by name."""
    from loader.registry.hosts import host_name, last_verify

    host = host_name(registry.cfg)
    plain = registry.confirmed_snapshot()
    if plain is not None:  # the common case: plain data, no validation needed
        by_name = {data["name"]: data for data in plain}
        rows = (_plain_list_row(by_name[name], host) for name in sorted(by_name))
        return [row for row in rows if not role or role in row["roles"]]
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
    if not name and not role:
        raise OverrideError("select: give a model NAME or --role ROLE")
    from loader.registry.service import select_model

    if role:
        name = select_by_role(role, require_capabilities=require, registry=registry)
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
        from loader.frontdoors.config_origin import explain_config_key

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


def verify_op(
    registry: Registry,
    name: str | None = None,
    all: bool = False,
    rehash: bool = False,
) -> Any:
    """Recompute an entry's artifact hashes and enforce its version lock."""
    from loader.integrity.version_locks import verify_all, verify_model

    if all and name:
        raise OverrideError(f"verify: give a model NAME or --all, not both (got {name!r})")
    if not all and not name:
        raise OverrideError("verify: give a model NAME or --all")
    if not all:
        result = verify_model(registry.get(name), registry=registry, rehash=rehash)
        return Outcome(result.to_json(), 0, result.warning or "")
    results, worst = verify_all(registry, sorted(registry.ensure_loaded()), rehash=rehash)
    registry.save()  # record every entry that verified, even when others failed
    warnings = [r["warning"] for r in results if r.get("warning")]
    failed = [r for r in results if "error" in r]
    lines = [*warnings, *(f"{r['name']}: {r['error']}" for r in failed)]
    if failed:
        lines.append(f"{len(failed)} of {len(results)} models failed verification")
    if not lines:
        return results
    return Outcome(results, worst, "\n".join(lines))


def lock_op(registry: Registry, name: str, set_expected: bool = False) -> dict[str, Any]:
    """Lock a model's version; --set-expected records its aggregate as expected."""
    from loader.integrity.version_locks import lock_model

    result = lock_model(registry.get(name), set_expected=set_expected, registry=registry)
    registry.save()
    return result


def unlock_op(registry: Registry, name: str) -> dict[str, Any]:
    """Unlock a model's version (the expected hash is kept)."""
    from loader.integrity.version_locks import unlock_model

    result = unlock_model(registry.get(name))
    registry.save()
    return result


def import_ollama_op(registry: Registry, url: str | None = None, dry_run: bool = False) -> Any:
    """Record the models of a running Ollama in the discovered layer."""
    from loader.importers import import_ollama

    report = import_ollama(registry, url=url, dry_run=bool(dry_run))
    if report["refused"]:  # the good models are recorded; each bad one is named
        return Outcome(report, EXIT_USAGE, "\n".join(r["error"] for r in report["refused"]))
    return report


def import_dir_op(
    registry: Registry,
    dirs: Sequence[str] = (),
    backend: str | None = "vllm",
    name: str | None = None,
    dry_run: bool = False,
    hash: bool = False,
) -> dict[str, Any]:
    """Record model folders (config.json or .gguf) in the discovered layer."""
    from loader.importers import import_dirs

    return import_dirs(
        registry,
        list(dirs or []),
        backend=backend,
        name=name,
        dry_run=bool(dry_run),
        hash=bool(hash),
    )


def rediscover_op(registry: Registry, dry_run: bool = False) -> dict[str, Any]:
    """Record every model folder under paths.models; report entries whose folder has gone."""
    from loader.importers import rediscover

    return rediscover(registry, dry_run=bool(dry_run))


def refresh_op(registry: Registry, jobs: int = 1) -> Any:
    """Re-import, hash, verify, probe and snapshot; write the report and summary."""
    from loader.pipeline.run import run_graph
    from loader.pipeline.tasks import build_graph

    graph = build_graph(registry=registry)
    record = run_graph(graph, ["refresh"], jobs=int(jobs or 1))
    report = graph.last_report or {}
    code = max(record.exit_code, int(report.get("exit_code", 0)))
    return Outcome(report, code) if code else report


def activate_model_op(
    registry: Registry, name: str | None = None, stop: bool = False
) -> dict[str, Any]:
    """Make a vLLM model the one server on the canonical port (--stop or none: stop it)."""
    from loader.orchestrator import activate, deactivate

    if stop or (name or "").strip().lower() == "none":
        return {"stopped": deactivate(registry=registry)}
    if not name:
        raise OverrideError("activate-model: give a model NAME, or --stop")
    return activate(name, registry=registry)


def current_model_op(registry: Registry) -> dict[str, Any] | None:
    """The running vLLM server's state, or null when none runs."""
    from loader.orchestrator import current

    return current(registry=registry)


def probe_vision_op(
    registry: Registry, name: str, image: str | None = None, expect: str | None = None
) -> Any:
    """Ask a vision model about an image, check that it sees it, and record the result."""
    from loader.probe.vision import run_vision_probe

    result = run_vision_probe(name, image, expect=expect, registry=registry)
    if result.vision_ok:
        from loader.probe.performance import record_probe_sample

        record_probe_sample(registry, name, result.latency_ms)
        return result.to_json()
    return Outcome(result.to_json(), EXIT_USAGE, result.notes)


def migrate_op(registry: Registry, dry_run: bool = False) -> Any:
    """Split a legacy single-file model_registry.json into the curated and discovered layers."""
    from loader.registry.migrate import migrate

    result = migrate(registry, dry_run=dry_run)
    return Outcome(result.to_json(), 0, "\n".join(result.warnings))


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


def schema_op(registry: Registry) -> dict[str, Any]:
    """Print the JSON Schema (2020-12) of a layer file."""
    from loader.upkeep.layer_schema import layer_schema

    return layer_schema()


def show_backends_op(registry: Registry, json: bool = False) -> Any:
    """Show each backend in use: its endpoint, its entries, and whether it answers."""
    from loader.upkeep.backends import backends_table, check_backends

    rows = check_backends(registry)
    return rows if json else Text(backends_table(rows))


def record_performance_op(
    registry: Registry,
    name: str,
    ttft_ms: float | None = None,
    tokens: int | None = None,
    duration_ms: float | None = None,
) -> dict[str, Any]:
    """Record one request's timings; keep the rolling summary in the discovered layer."""
    from loader.probe.performance import record_performance

    return record_performance(
        name, ttft_ms=ttft_ms, tokens=tokens, duration_ms=duration_ms, registry=registry
    )


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
        Operation("select", select_op, ("name", "require", "role")),
        Operation("list-roles", list_roles_op),
        Operation("metrics", metrics_op, ("name",)),
        Operation("explain", explain_op, ("name", "field", "config_key")),
        Operation("snapshot", snapshot_op),
        Operation("migrate", migrate_op, ("dry_run",)),
        Operation("verify", verify_op, ("name", "all", "rehash")),
        Operation("lock", lock_op, ("name", "set_expected"), ("name",)),
        Operation("unlock", unlock_op, ("name",), ("name",)),
        Operation("import-ollama", import_ollama_op, ("url", "dry_run")),
        Operation("import-dir", import_dir_op, ("dirs", "backend", "name", "dry_run", "hash")),
        Operation("rediscover", rediscover_op, ("dry_run",)),
        Operation("refresh", refresh_op, ("jobs",)),
        Operation("activate-model", activate_model_op, ("name", "stop")),
        Operation("current-model", current_model_op),
        Operation("probe-vision", probe_vision_op, ("name", "image", "expect"), ("name",)),
        Operation("audit", audit_op, ("names", "fix", "dry_run")),
        Operation("set", set_op, ("name", "assignments", "layer", "dry_run"), ("name",)),
        Operation("unset", unset_op, ("name", "fields", "layer", "dry_run"), ("name",)),
        Operation("promote", promote_op, ("name", "fields", "dry_run"), ("name",)),
        Operation("demote", demote_op, ("name", "fields", "dry_run"), ("name",)),
        Operation("schema", schema_op),
        Operation("show-backends", show_backends_op, ("json",)),
        Operation(
            "record-performance",
            record_performance_op,
            ("name", "ttft_ms", "tokens", "duration_ms"),
            ("name",),
        ),
    )
}
