"""What a doit run did: one-line failures, JSON log lines, and the refresh report.

doit calls the reporter for every task (run, up to date, failed, not run
because a dependency failed). ``RunRecord`` keeps that, with durations and the
values each task returned; ``build_report`` turns it and the registry into the
JSON report documented in ``docs/refresh-report.schema.json``, and
``markdown_summary`` into a short summary for ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doit.exceptions import TaskFailed, UnmetDependency
from doit.reporter import ConsoleReporter

from ..errors import EXIT_OK, EXIT_USAGE, RegistryError, VersionLockViolation
from ..layers import atomic_write_bytes

if TYPE_CHECKING:
    from ..tasks import Graph

REPORT_SCHEMA = "imageworks-loader/refresh-report/1"
MODEL_TASKS = ("hash", "verify", "probe")


class OperationFailed(TaskFailed):
    """A task whose operation raised a ``RegistryError``: one line and its exit code."""

    def __init__(self, msg: str, *, exit_code: int = EXIT_USAGE, kind: str = "", **details: Any):
        super().__init__(msg)
        self.exit_code = exit_code
        self.kind = kind
        self.details = details

    @classmethod
    def from_error(cls, exc: RegistryError) -> OperationFailed:
        details: dict[str, Any] = {}
        if isinstance(exc, VersionLockViolation):
            details = {
                "expected_aggregate_sha256": exc.expected,
                "aggregate_sha256": exc.found,
                "changed_files": exc.changed_files,
            }
        return cls(str(exc), exit_code=exc.exit_code, kind=type(exc).__name__, **details)

    def get_msg(self) -> str:
        return self.message


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class TaskRecord:
    task: str
    status: str = "pending"  # ran, up-to-date, failed, not-run, ignored
    duration_s: float = 0.0
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None
    exit_code: int = EXIT_OK
    details: dict[str, Any] = field(default_factory=dict)
    _started: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "exit_code": self.exit_code,
            "error": self.error,
        }


@dataclass
class RunRecord:
    """Every task doit saw in one run, in the order it saw them."""

    selected: list[str] = field(default_factory=list)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    started_at: str = field(default_factory=_now)
    finished_at: str = ""
    started: float = field(default_factory=time.monotonic)
    duration_s: float = 0.0
    runtime_errors: list[str] = field(default_factory=list)

    def get(self, name: str) -> TaskRecord:
        if name not in self.tasks:
            self.tasks[name] = TaskRecord(name)
        return self.tasks[name]

    @property
    def failed(self) -> list[TaskRecord]:
        return [r for r in self.tasks.values() if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        """The worst exit code of the failed tasks (2 integrity, 1 any other)."""
        codes = [r.exit_code for r in self.failed]
        if self.runtime_errors:
            codes.append(EXIT_USAGE)
        return max(codes, default=EXIT_OK)


class PipelineReporter(ConsoleReporter):
    """doit's console reporter, with one line per failure on stderr, JSON log
    lines under ``profile.log_format=json``, and the refresh report at the end."""

    graph: Graph
    in_process = False
    desc = "imageworks-loader pipeline"

    def __init__(self, outstream: Any, options: dict[str, Any]) -> None:
        super().__init__(sys.stderr if self.in_process else outstream, options)
        self.json_logs = self.graph.profile("log_format") == "json"
        self.prog = "imageworks-loader refresh" if self.in_process else "doit"
        self.record = RunRecord()

    # --- output ---------------------------------------------------------------

    def _log(self, level: str, event: str, task: str | None, message: str = "", **extra: Any):
        if self.json_logs:
            line = {"time": _now(), "level": level, "event": event, "task": task}
            if message:
                line["message"] = message
            line.update(extra)
            sys.stderr.write(json.dumps(line, separators=(",", ":")) + "\n")
        elif level == "error":
            sys.stderr.write(f"{self.prog}: {task + ': ' if task else ''}{message}\n")

    def _relay_output(self, task: Any) -> None:
        if not self.json_logs:
            return
        for action in task.actions:
            for stream, level in ((action.out, "info"), (action.err, "warning")):
                for line in (stream or "").splitlines():
                    if line.strip():
                        self._log(level, "output", task.name, line)

    # --- doit's reporter interface ----------------------------------------------

    def initialize(self, tasks: Any, selected_tasks: list[str]) -> None:
        self.record.selected = list(selected_tasks)

    def execute_task(self, task: Any) -> None:
        if task.actions:
            self.record.get(task.name)._started = time.monotonic()
        if self.json_logs:
            if task.actions:
                self._log("info", "start", task.name)
        else:
            super().execute_task(task)

    def _finish(self, task: Any, status: str) -> TaskRecord:
        if not task.actions:  # a group (hash, verify, refresh): its members are recorded
            return TaskRecord(task.name)
        rec = self.record.get(task.name)
        rec.status = status
        if rec._started:
            rec.duration_s = time.monotonic() - rec._started
        rec.values = dict(task.values or {})
        return rec

    def add_success(self, task: Any) -> None:
        rec = self._finish(task, "ran")
        self._relay_output(task)
        if task.actions:
            self._log("info", "done", task.name, duration_s=round(rec.duration_s, 3))

    def skip_uptodate(self, task: Any) -> None:
        self._finish(task, "up-to-date")
        if self.json_logs:
            self._log("info", "up-to-date", task.name)
        else:
            super().skip_uptodate(task)

    def skip_ignore(self, task: Any) -> None:
        self._finish(task, "ignored")
        if not self.json_logs:
            super().skip_ignore(task)

    def add_failure(self, task: Any, fail: Any) -> None:
        if isinstance(fail, UnmetDependency):
            rec = self._finish(task, "not-run")
            rec.error = f"not run: it needs {fail.message}, which failed"
            self._log("warning" if self.json_logs else "info", "not-run", task.name, rec.error)
            return
        rec = self._finish(task, "failed")
        self._relay_output(task)
        if isinstance(fail, OperationFailed):
            rec.error, rec.exit_code = fail.message, fail.exit_code
            rec.error_kind, rec.details = fail.kind or None, dict(fail.details)
        else:  # not one of ours: a bug or a doit error; keep doit's full text
            rec.error, rec.exit_code = fail.get_msg().strip(), EXIT_USAGE
            rec.error_kind = fail.get_name()
        self._log("error", "failed", task.name, rec.error, exit_code=rec.exit_code)

    def runtime_error(self, msg: str) -> None:
        self.record.runtime_errors.append(msg)
        self._log("error", "runtime-error", None, msg.strip())

    def complete_run(self) -> None:
        record = self.record
        record.finished_at = _now()
        record.duration_s = time.monotonic() - record.started
        failed = record.failed
        if failed:
            names = ", ".join(f"{r.task} (exit {r.exit_code})" for r in failed)
            self._log("error", "run-failed", None, f"{len(failed)} task(s) failed: {names}")
        if "refresh" in record.selected:
            write_outputs(self.graph, build_report(self.graph, record), self._log)
        self.graph.last_run = record


def reporter_for(graph: Graph, *, in_process: bool = False) -> type[PipelineReporter]:
    """The reporter class doit instantiates, bound to one graph."""
    attrs = {"graph": graph, "in_process": in_process}
    return type("PipelineReporter", (PipelineReporter,), attrs)


# --- the refresh report -----------------------------------------------------------


def _task_entry(rec: TaskRecord | None) -> dict[str, Any] | None:
    return None if rec is None else rec.to_json()


def _lock_result(entry: Any, verify: TaskRecord | None) -> dict[str, Any]:
    lock = entry.version_lock
    result = {
        "locked": bool(lock.locked),
        "expected_aggregate_sha256": lock.expected_aggregate_sha256,
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
            result["found_aggregate_sha256"] = verify.details.get("aggregate_sha256")
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
        "skipped": graph.missing.get(name),
        "ran": [kind for kind, rec in tasks.items() if rec is not None and rec.status == "ran"],
        "failed": failed_here,
        "tasks": {kind: _task_entry(rec) for kind, rec in tasks.items()},
        "aggregate_sha256": aggregate,
        "files": [f.model_dump() for f in artifacts.files],
        "lock": _lock_result(entry, verify),
        "probe": (probe.values or None) if probe is not None else None,
        "durations_s": {
            kind: round(rec.duration_s, 3) for kind, rec in tasks.items() if rec is not None
        },
    }


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
        "finished_at": record.finished_at or _now(),
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
    skipped = [m["name"] for m in report["models"] if not m["on_host"]]
    if skipped:
        lines += ["", f"Not on this host (skipped): {len(skipped)} models."]
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
