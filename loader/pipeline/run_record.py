"""What one doit run did, task by task: the records the reporter keeps and
the refresh report is built from."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from doit.exceptions import TaskFailed

from loader.errors import (
    EXIT_OK,
    EXIT_USAGE,
    InternalError,
    RegistryError,
    VersionLockViolation,
    error_line,
)


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
        message = error_line(exc) if isinstance(exc, InternalError) else str(exc)
        return cls(message, exit_code=exc.exit_code, kind=type(exc).__name__, **details)

    def get_msg(self) -> str:
        return self.message


def now() -> str:
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
    started: float = 0.0  # time.monotonic() when it began
    alone: bool = False  # failed without holding back other tasks (doit saw a success)

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
    started_at: str = field(default_factory=now)
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
