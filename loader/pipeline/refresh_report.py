"""The refresh report: what a run did per model, as JSON and as Markdown.

``build_report`` turns a ``RunRecord`` and the registry into the JSON report
documented in ``docs/refresh-report.schema.json``; ``markdown_summary`` into a
short summary for ``$GITHUB_STEP_SUMMARY``; ``write_outputs`` writes both where
the profile says.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loader.errors import EXIT_OK, EXIT_USAGE, RegistryError
from loader.fileio import atomic_write_bytes
from loader.pipeline.run_record import RunRecord, TaskRecord, now

if TYPE_CHECKING:
    from loader.pipeline.graph import Graph

REPORT_SCHEMA = "imageworks-loader/refresh-report/1"
MODEL_TASKS = ("hash", "verify", "probe")


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _sha256_or_none(value: Any) -> str | None:
    """A hash as the schema has it: 64 hex digits, or null. ImageWorks writes
    ``""`` for "not hashed yet"; the report says null."""
    return value if isinstance(value, str) and _SHA256.fullmatch(value) else None


def _task_entry(rec: TaskRecord | None) -> dict[str, Any] | None:
    return None if rec is None else rec.to_json()


def _lock_result(entry: Any, verify: TaskRecord | None) -> dict[str, Any]:
    lock = entry.version_lock
    result = {
        "locked": bool(lock.locked),
        "expected_aggregate_sha256": _sha256_or_none(lock.expected_aggregate_sha256),
        "last_verified": lock.last_verified,
        "status": "not-checked",
        "changed_files": [],
    }
    if verify is None:
        return result
    if verify.status == "failed":
        violated = verify.error_kind == "VersionLockViolation"
        result["status"] = "violated" if violated else "error"
        result["changed_files"] = list(verify.details.get("changed_files", []))
        if violated:
            found = verify.details.get("aggregate_sha256")
            result["found_aggregate_sha256"] = _sha256_or_none(found)
    elif verify.status in ("ran", "up-to-date"):
        result["status"] = verify.values.get("status", "ok" if lock.locked else "unlocked")
        result["changed_files"] = list(verify.values.get("changed_files", []))
    return result


def _model_report(graph: Graph, record: RunRecord, name: str, entry: Any) -> dict[str, Any]:
    tasks = {kind: record.tasks.get(f"{kind}:{name}") for kind in MODEL_TASKS}
    verify = tasks["verify"]
    failed_here = any(r is not None and r.status == "failed" for r in tasks.values())
    artifacts = entry.artifacts
    if verify is not None and verify.status == "failed" and verify.details:
        aggregate = verify.details.get("aggregate_sha256")
    else:
        aggregate = artifacts.aggregate_sha256
    probe = tasks["probe"]
    return {
        "name": name,
        "backend": entry.backend,
        "on_host": name in graph.artifacts,
        "skipped": _skip_reason(graph, name, entry),
        "skipped_tasks": _skipped_tasks(graph, name, entry, tasks),
        "ran": [kind for kind, rec in tasks.items() if rec is not None and rec.status == "ran"],
        "failed": failed_here,
        "tasks": {kind: _task_entry(rec) for kind, rec in tasks.items()},
        "aggregate_sha256": _sha256_or_none(aggregate),
        "files": [f.model_dump() for f in artifacts.files],
        "lock": _lock_result(entry, verify),
        "probe": (probe.values or None) if probe is not None else None,
        "durations_s": {
            kind: round(rec.duration_s, 3) for kind, rec in tasks.items() if rec is not None
        },
    }


def _skip_reason(graph: Graph, name: str, entry: Any) -> str | None:
    """Why a model has no tasks on this host: its files are missing (and
    whether it is locked, so its lock went unchecked)."""
    missing = graph.missing.get(name)
    if missing is None:
        return None
    if entry.locked():
        return f"locked, files missing: its lock is not checked on this host ({missing})"
    return f"files missing ({missing})"


def _skipped_tasks(
    graph: Graph, name: str, entry: Any, tasks: dict[str, TaskRecord | None]
) -> dict[str, str]:
    """Tasks a model on this host did not get, and why (a vision model that is
    not served is not probed)."""
    if name not in graph.artifacts or tasks["probe"] is not None:
        return {}
    if not entry.has_capability("vision"):
        return {}
    desired = graph.config.get("orchestrator.desired")
    if entry.backend == "vllm" and name != desired:
        return {
            "probe": "not served: vLLM serves one model, orchestrator.desired "
            f"({desired or 'none'}), so this one is not probed"
        }
    return {"probe": "not probed (probe-vision is not part of this run)"}


def build_report(graph: Graph, record: RunRecord) -> dict[str, Any]:
    """The machine-readable refresh report (schema: ``REPORT_SCHEMA``)."""
    registry = graph.registry
    try:
        entries = registry.ensure_loaded()  # tasks may have written the layers
        load_error = None
    except RegistryError as exc:
        entries, load_error = dict(registry.entries), str(exc)
    models = [_model_report(graph, record, n, entries[n]) for n in sorted(entries)]
    counts: dict[str, int] = {}
    for rec in record.tasks.values():
        counts[rec.status] = counts.get(rec.status, 0) + 1
    return {
        "schema": REPORT_SCHEMA,
        "host": socket.gethostname(),
        "registry": str(registry.layer_files().folder.absolute()),
        "profile": graph.profile("name"),
        "started_at": record.started_at,
        "finished_at": record.finished_at or now(),
        "duration_s": round(record.duration_s, 3),
        "exit_code": record.exit_code,
        "ok": record.exit_code == EXIT_OK,
        "counts": {
            "models": len(models),
            "models_failed": sum(1 for m in models if m["failed"]),
            "lock_violations": sum(1 for m in models if m["lock"]["status"] == "violated"),
            "tasks": counts,
        },
        "errors": [
            {"task": r.task, "exit_code": r.exit_code, "error": r.error} for r in record.failed
        ]
        + [{"task": None, "exit_code": EXIT_USAGE, "error": e} for e in record.runtime_errors]
        + ([{"task": None, "exit_code": EXIT_USAGE, "error": load_error}] if load_error else []),
        "tasks": [rec.to_json() for rec in record.tasks.values()],
        "models": models,
    }


def _cell(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "–"
    return {"ran": "ran", "up-to-date": "up to date", "failed": "**failed**"}.get(
        rec["status"], rec["status"]
    )


def markdown_summary(report: dict[str, Any]) -> str:
    """A short Markdown summary of a report (for ``$GITHUB_STEP_SUMMARY``)."""
    verdict = "passed" if report["ok"] else f"failed (exit {report['exit_code']})"
    counts = report["counts"]
    lines = [
        f"## imageworks-loader refresh {verdict}",
        "",
        f"Host `{report['host']}`, profile `{report['profile']}`, "
        f"{counts['models']} models, {counts['models_failed']} failed, "
        f"{counts['lock_violations']} lock violations, {report['duration_s']:.1f} s.",
        "",
        "| model | hash | verify | lock | probe | aggregate |",
        "|---|---|---|---|---|---|",
    ]
    for model in report["models"]:
        if not model["on_host"] and not model["failed"]:
            continue
        tasks = model["tasks"]
        lines.append(
            f"| `{model['name']}` | {_cell(tasks['hash'])} | {_cell(tasks['verify'])} | "
            f"{model['lock']['status']} | {_cell(tasks['probe'])} | "
            f"`{(model['aggregate_sha256'] or '')[:12]}` |"
        )
    skipped = [(m["name"], m["skipped"]) for m in report["models"] if m["skipped"]]
    skipped += [
        (m["name"], f"{task}: {why}")
        for m in report["models"]
        for task, why in sorted((m.get("skipped_tasks") or {}).items())
    ]
    if skipped:
        lines += ["", f"### Skipped ({len(skipped)})", ""]
        lines += [f"- `{name}`: {why}" for name, why in skipped]
    if report["errors"]:
        lines += ["", "### Failures", ""]
        for error in report["errors"]:
            where = error["task"] or "run"
            lines.append(f"- `{where}` (exit {error['exit_code']}): {error['error']}")
    return "\n".join(lines) + "\n"


def write_outputs(graph: Graph, report: dict[str, Any], log: Any) -> None:
    """Write the report and the summary where the profile says."""
    graph.last_report = report
    for key, data in (
        ("report", json.dumps(report, indent=2) + "\n"),
        ("summary", markdown_summary(report)),
    ):
        target = graph.profile(key)
        if not target:
            continue
        path = Path(str(target)).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data.encode("utf-8"))
        except OSError as exc:
            log("error", "report", None, f"{path}: cannot write the {key}: {exc.strerror}")
            report["exit_code"] = max(report["exit_code"], EXIT_USAGE)
            continue
        log("info", "report", None, f"wrote {path}", path=str(path))
