"""Warnings and progress go through :mod:`logging`; a front door decides how they look.

Library modules call :func:`warning` or :func:`info` (records of the logger
named for the module, all under ``loader``) and never write to stderr
themselves. A front door (the CLI, a Hydra app, a doit run) wraps its run in
:func:`front_door_logging`, which shows each record as one line on stderr: a
warning as::

    imageworks-loader: warning: <message>

progress (such as the orchestrator's "starting …") as the message alone, or,
under ``profile.log_format=json`` (``profile=ci``), one JSON object per line,
in the shape of the pipeline's own log lines::

    {"time":"…","level":"warning","event":"warning","source":"loader.registry.compose","message":"…"}

:mod:`logging` is imported at the first record, not before: a ``list`` served
from the snapshot says nothing and does not pay for it. A program that uses
the library without a front door sees each warning as ``warning: <message>``
on stderr (progress is not shown), until it configures logging itself: then
the records go to its handlers, as any library's do.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

ROOT = "loader"
PROG = "imageworks-loader"
WARNING, INFO = 30, 20  # logging's levels, without importing it


class Door:
    """How the current front door shows records (see the module)."""

    def __init__(self, prog: str, json_lines: bool) -> None:
        self.prog = prog
        self.json_lines = json_lines
        self.handler: Any = None  # an installed OneLineHandler, once a record came
        self.saved: tuple[int, bool] = (0, True)

    def format(self, level: int, level_name: str, source: str, message: str) -> str:
        message = " ".join(message.splitlines())
        if self.json_lines:
            from datetime import UTC, datetime  # only JSON lines carry a time

            line = {
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "level": level_name,
                "event": level_name,
                "source": source,
                "message": message,
            }
            return json.dumps(line, separators=(",", ":"))
        if level < WARNING:
            return message
        return f"{self.prog}: {level_name}: {message}"

    def attach(self) -> None:
        if self.handler is not None:
            return
        import logging

        door = self

        class OneLineHandler(logging.Handler):
            """Each record as one line on the *current* ``sys.stderr`` (looked
            up at each write: a test's captured stderr, or a redirected one)."""

            def emit(self, record: logging.LogRecord) -> None:
                line = door.format(
                    record.levelno, record.levelname.lower(), record.name, record.getMessage()
                )
                with contextlib.suppress(OSError, ValueError):  # a closed stderr
                    sys.stderr.write(line + "\n")
                    sys.stderr.flush()

        logger = logging.getLogger(ROOT)
        self.saved = (logger.level, logger.propagate)
        self.handler = OneLineHandler(logging.INFO)
        logger.addHandler(self.handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False

    def detach(self) -> None:
        if self.handler is None:
            return
        import logging

        logger = logging.getLogger(ROOT)
        logger.removeHandler(self.handler)
        logger.setLevel(self.saved[0])
        logger.propagate = self.saved[1]
        self.handler = None


_door: Door | None = None


@contextlib.contextmanager
def front_door_logging(prog: str = PROG, json_lines: bool = False) -> Iterator[Door]:
    """Within the block, the library's records are shown by one handler (see
    the module). Yields the ``Door``, so a door can switch to JSON lines once
    its config is known (:func:`use_config`). Nested blocks use the outer one."""
    global _door
    if _door is not None:
        yield _door
        return
    door = _door = Door(prog, json_lines)
    try:
        yield door
    finally:
        _door = None
        door.detach()


def open_front_door(prog: str = PROG, json_lines: bool = False) -> Door:
    """A door that stays open for the rest of the process: for a front door
    that hands control to another program (``dodo.py`` to doit)."""
    global _door
    if _door is None:
        _door = Door(prog, json_lines)
    return _door


def use_config(cfg: Any) -> None:
    """Show records as the composed config says (``profile.log_format``)."""
    if _door is not None:
        _door.json_lines = wants_json_lines(cfg)


def wants_json_lines(cfg: Any) -> bool:
    """Whether a composed config asks for JSON lines (``profile.log_format``)."""
    profile: Any = cfg.get("profile") if hasattr(cfg, "get") else None
    return hasattr(profile, "get") and profile.get("log_format") == "json"


def warning(source: str, message: str) -> None:
    """Log a warning for module ``source`` (pass ``__name__``)."""
    _log(WARNING, source, message)


def info(source: str, message: str) -> None:
    """Log progress for module ``source`` (pass ``__name__``)."""
    _log(INFO, source, message)


def _log(level: int, source: str, message: str) -> None:
    import logging

    if _door is not None:
        _door.attach()
    logger = logging.getLogger(source)
    if _door is None and not logger.hasHandlers():
        # A program using the library that configured no logging: a warning
        # reads as it always did (progress is not shown, as Python's default).
        if level >= WARNING:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(f"warning: {' '.join(message.splitlines())}\n")
        return
    logger.log(level, "%s", message)
