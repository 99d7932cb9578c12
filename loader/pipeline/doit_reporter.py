"""doit's reporter for the pipeline: one-line failures and JSON log lines, as
the run happens.

doit calls the reporter for every task (run, up to date, failed, not run
because a dependency failed). It keeps that in a ``RunRecord``
(``loader.pipeline.run_record``), with durations and the values each task
returned; at the end of a ``refresh`` it hands the record to
``loader.pipeline.refresh_report`` for the JSON report and the Markdown summary.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from doit.exceptions import UnmetDependency
from doit.reporter import ConsoleReporter

from loader.errors import EXIT_USAGE, RegistryError
from loader.pipeline.refresh_report import build_report, write_outputs
from loader.pipeline.run_record import OperationFailed, RunRecord, TaskRecord, now

if TYPE_CHECKING:
    from loader.pipeline.graph import Graph


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

    def _log(
        self, level: str, event: str, task: str | None, message: str = "", **extra: Any
    ) -> None:
        if self.json_logs:
            line = {"time": now(), "level": level, "event": event, "task": task}
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
            self.record.get(task.name).started = time.monotonic()
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
        if rec.started:
            rec.duration_s = time.monotonic() - rec.started
        rec.values = dict(task.values or {})
        return rec

    def add_success(self, task: Any) -> None:
        rec = self._finish(task, "ran")
        self._relay_output(task)
        alone = rec.values.get("failed_alone")
        if isinstance(alone, dict):  # failed, but holds back no other task
            rec.status, rec.alone = "failed", True
            rec.error = str(alone.get("error"))
            rec.exit_code = int(alone.get("exit_code") or EXIT_USAGE)
            self._log("error", "failed", task.name, rec.error, exit_code=rec.exit_code)
            return
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

    def _flush(self) -> None:
        """Write the registry records the run deferred (``loader/savebatch.py``)."""
        try:
            self.graph.flush()
        except RegistryError as exc:
            self.runtime_error(f"recording the run's results: {exc}")

    def complete_run(self) -> None:
        self._flush()
        record = self.record
        record.finished_at = now()
        record.duration_s = time.monotonic() - record.started
        failed = record.failed
        if failed:
            names = ", ".join(f"{r.task} (exit {r.exit_code})" for r in failed)
            self._log("error", "run-failed", None, f"{len(failed)} task(s) failed: {names}")
        if "refresh" in record.selected:
            write_outputs(self.graph, build_report(self.graph, record), self._log)
        self.graph.last_run = record
        if failed and all(r.alone for r in failed) and not self.in_process:
            # doit saw only successes; its exit code must still say a task
            # failed. Its database is closed by now (Runner.finish).
            raise SystemExit(EXIT_USAGE)


def reporter_for(graph: Graph, *, in_process: bool = False) -> type[PipelineReporter]:
    """The reporter class doit instantiates, bound to one graph."""
    attrs = {"graph": graph, "in_process": in_process}
    return type("PipelineReporter", (PipelineReporter,), attrs)
