"""One way to run an operation, for every front door.

``invoke`` calls an operation and turns what happened into an ``Invocation``:
its data or text, the warning lines for stderr, its exit code, and the error
that stopped it. A ``RegistryError`` keeps its own exit code; any other
exception is a bug (``InternalError``, exit code 3). The CLI, the Hydra apps
and the doit tasks only print an ``Invocation`` their own way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loader.errors import EXIT_OK, RegistryError, as_registry_error, error_line
from loader.operations.results import Outcome, Text

if TYPE_CHECKING:
    from loader.registry.core import Registry


class Invocation:
    """What one operation did, as every front door reports it."""

    __slots__ = ("data", "error", "exit_code", "text", "warnings")

    def __init__(
        self,
        exit_code: int = EXIT_OK,
        data: Any = None,
        *,
        text: str | None = None,
        warnings: list[str] | None = None,
        error: RegistryError | None = None,
    ) -> None:
        self.exit_code = exit_code
        self.data = data  # the JSON-ready result (None for text output or an error)
        self.text = text  # output printed as it is (JSON Lines, a diff, a table)
        self.warnings = list(warnings or [])  # lines for stderr
        self.error = error  # what stopped it, if anything

    def __repr__(self) -> str:
        return f"Invocation(exit_code={self.exit_code}, error={self.error!r})"

    @property
    def error_line(self) -> str:
        """``error: ...`` (or ``internal error: ...``), or "" when it ran."""
        return "" if self.error is None else error_line(self.error)

    @classmethod
    def of_result(cls, result: Any) -> Invocation:
        if isinstance(result, Text):
            return cls(result.exit_code, text=result.text, warnings=result.message.splitlines())
        if isinstance(result, Outcome):
            return cls(result.exit_code, result.data, warnings=result.message.splitlines())
        return cls(EXIT_OK, result)

    @classmethod
    def of_error(cls, exc: Exception) -> Invocation:
        error = as_registry_error(exc)
        return cls(error.exit_code, error=error)


def invoke(
    operation: str,
    arguments: Mapping[str, Any],
    registry: Callable[[], Registry],
) -> Invocation:
    """Run ``operation`` with ``arguments`` on the registry ``registry()``
    makes (building it may fail like the operation: a bad layer file)."""
    from loader.operations.table import OPERATIONS

    try:
        result = OPERATIONS[operation].call(registry(), dict(arguments), invoke)
    except Exception as exc:  # every exception ends here: on purpose, or a bug
        return Invocation.of_error(exc)
    return Invocation.of_result(result)
