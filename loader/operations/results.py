"""What an operation may return besides plain JSON-ready data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
