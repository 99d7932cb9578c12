"""Task actions: call an operation, turn its errors into one-line task failures.

The operation runs through the ``invoke`` the graph was built with (the same
one the CLI and the Hydra apps use); a ``RegistryError`` becomes a doit
failure carrying its exit code, and any other exception is a bug (exit 3).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from loader.errors import RegistryError, as_registry_error
from loader.pipeline.graph import Graph
from loader.pipeline.run_record import OperationFailed
from loader.rows import plain


class OperationOutcome(RegistryError):
    """An operation that answered with a non-zero exit code and its message."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def call_operation(operation: str, graph: Graph, arguments: dict[str, Any]) -> Any:
    """Call an operation as the CLI does; its warnings go to stderr, its error
    is raised, and a non-zero exit code raises ``OperationOutcome`` with its
    message."""
    if graph.invoke is None:
        raise RuntimeError("this graph was built without invoke: it runs no operation")
    invocation = graph.invoke(operation, arguments, lambda: graph.registry)
    if invocation.error is not None:
        raise invocation.error
    message = "\n".join(invocation.warnings)
    if invocation.exit_code:
        raise OperationOutcome(message or f"{operation} failed", invocation.exit_code)
    if invocation.text is not None:  # printed as it is (audit's JSON Lines)
        sys.stdout.write(invocation.text)
        return {"lines": invocation.text.count("\n")}
    for line in invocation.warnings:
        print(f"imageworks-loader {operation}: {line}", file=sys.stderr)
    return plain(invocation.data)  # doit stores it as JSON


def operation_action(operation: str, graph: Graph, arguments: dict[str, Any]) -> Callable[[], Any]:
    def action() -> Any:
        return call_operation(operation, graph, arguments)

    return guarded(action)


def guarded(call: Callable[[], Any]) -> Callable[[], Any]:
    """A doit python-action: a dict result is kept as the task's values; a
    ``RegistryError`` becomes a one-line failure carrying its exit code, any
    other exception an internal error (exit 3)."""

    def action() -> Any:
        try:
            result = call()
        except Exception as exc:  # on purpose (its exit code) or a bug (exit 3)
            return OperationFailed.from_error(as_registry_error(exc))
        return result if isinstance(result, dict) else {"result": result}

    action.__name__ = getattr(call, "__name__", "action")
    return action
