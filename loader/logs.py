"""Warnings and progress go through :mod:`logging`; a front door decides how they look.

Library modules log to ``logging.getLogger(__name__)`` (all under the
``loader`` logger) and never write to stderr themselves. A front door (the
CLI, a Hydra app, a doit run) wraps its run in :func:`front_door_logging`,
which shows each record as one line on stderr: a warning as::

    imageworks-loader: warning: <message>

progress (``INFO``, such as the orchestrator's "starting …") as the message
alone, or, under ``profile.log_format=json`` (``profile=ci``), as one JSON object
per line, in the shape the pipeline's own log lines have::

    {"time":"…","level":"warning","event":"warning","source":"loader.registry.compose","message":"…"}

A program that imports the library without a front door gets Python's
default: warnings (not progress) on stderr, one per line, unless it
configures logging itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

ROOT = "loader"
PROG = "imageworks-loader"


class OneLineHandler(logging.Handler):
    """Each record as one line on the *current* ``sys.stderr`` (looked up at
    each write, so a test's captured stderr, or a redirected one, is used)."""

    def __init__(self, prog: str = PROG, json_lines: bool = False) -> None:
        super().__init__(logging.INFO)
        self.prog = prog
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        message = " ".join(record.getMessage().splitlines())
        level = record.levelname.lower()
        if self.json_lines:
            line = {
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "level": level,
                "event": level,
                "source": record.name,
                "message": message,
            }
            return json.dumps(line, separators=(",", ":"))
        if record.levelno < logging.WARNING:
            return message
        return f"{self.prog}: {level}: {message}"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed or broken stderr: nothing to tell
            pass


@contextlib.contextmanager
def front_door_logging(prog: str = PROG, json_lines: bool = False) -> Iterator[OneLineHandler]:
    """Within the block, the library's warnings are shown by one handler (see
    the module). Yields it, so a door can switch to JSON lines once its config
    is known (``handler.json_lines = True``). Nested blocks use the outer one."""
    logger = logging.getLogger(ROOT)
    for existing in logger.handlers:
        if isinstance(existing, OneLineHandler):
            yield existing
            return
    handler = OneLineHandler(prog, json_lines)
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def wants_json_lines(cfg: Any) -> bool:
    """Whether a composed config asks for JSON lines (``profile.log_format``)."""
    profile: Any = cfg.get("profile") if hasattr(cfg, "get") else None
    return hasattr(profile, "get") and profile.get("log_format") == "json"
