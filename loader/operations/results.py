"""What an operation may return besides plain JSON-ready data."""

from __future__ import annotations

from typing import Any

# Plain classes, not dataclasses: every CLI run imports this module, and on
# Python 3.11 importing dataclasses (and inspect with it) costs a `list` ~8 ms.


class Outcome:
    """A result to print plus a non-zero exit code (e.g. ``verify --all``
    printing every entry's result, then failing if any lock was violated)."""

    __slots__ = ("data", "exit_code", "message")

    def __init__(self, data: Any, exit_code: int, message: str = "") -> None:
        self.data = data
        self.exit_code = exit_code
        self.message = message

    def __repr__(self) -> str:
        return (
            f"Outcome(data={self.data!r}, exit_code={self.exit_code!r}, message={self.message!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Outcome):
            return NotImplemented
        return (self.data, self.exit_code, self.message) == (
            other.data,
            other.exit_code,
            other.message,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was


class Text:
    """Output printed as it is (JSON Lines, a table for a person, a diff),
    with its exit code and any lines for stderr."""

    __slots__ = ("text", "exit_code", "message")

    def __init__(self, text: str, exit_code: int = 0, message: str = "") -> None:
        self.text = text
        self.exit_code = exit_code
        self.message = message

    def __repr__(self) -> str:
        return f"Text(text={self.text!r}, exit_code={self.exit_code!r}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Text):
            return NotImplemented
        return (self.text, self.exit_code, self.message) == (
            other.text,
            other.exit_code,
            other.message,
        )

    __hash__ = None  # type: ignore[assignment]
