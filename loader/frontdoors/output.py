"""What the front doors print: results as JSON on stdout, one line per error
or warning on stderr, and the exit code that goes with them."""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from loader.errors import EXIT_OK, InternalError, RegistryError, error_line
from loader.operations.invoke import Invocation
from loader.rows import holds_rows, rows_as_list

PROG = "imageworks-loader"
COMPLETE_NAMES = "__complete-names"  # what the completion scripts run to list model names
DEBUG_ENV = "IMAGEWORKS_LOADER_DEBUG"  # set: an internal error also prints its traceback


def print_error(prefix: str, error: RegistryError) -> int:
    """``PREFIX: error: ...`` (or ``internal error: ...``) on stderr; returns
    the error's exit code. An internal error's traceback only when asked
    (``IMAGEWORKS_LOADER_DEBUG=1``)."""
    if isinstance(error, InternalError) and os.environ.get(DEBUG_ENV) and error.__cause__:
        import traceback

        traceback.print_exception(error.__cause__, file=sys.stderr)
    print(f"{prefix}: {error_line(error)}", file=sys.stderr)
    return error.exit_code


def print_warnings(command: str, lines: Iterable[str]) -> None:
    for line in lines:
        print(f"{PROG} {command}: {line}", file=sys.stderr)


def print_invocation(command: str, invocation: Invocation, *, compact: bool = False) -> int:
    """Print what an operation did (its warnings on stderr, then its text or
    its data as JSON on stdout); returns its exit code. ``compact``: JSON on
    one line (a sweep prints JSON Lines, one job per line)."""
    if invocation.error is not None:
        return print_error(PROG, invocation.error)
    print_warnings(command, invocation.warnings)
    code = invocation.exit_code
    if invocation.text is not None:
        return write_pieces([invocation.text], code)
    result = invocation.data
    if compact:
        compact_text = json.dumps(result, separators=(",", ":"), default=rows_as_list)
        return write_pieces([compact_text, "\n"], code)
    if isinstance(result, dict):
        # Written as it is encoded: a big report (an import of 10,000 tags)
        # never exists twice over as one string, and its rows are made one
        # at a time (``loader.rows``).
        encoded = _batched(iter_json(result))
        return write_pieces(itertools.chain(encoded, ["\n"]), code)
    return write_pieces([to_json(result), "\n"], code)


def iter_json(value: Any, depth: int = 0) -> Iterator[str]:
    """``json.dumps(value, indent=2)`` in pieces; ``Rows`` (and dicts holding
    them) are written item by item, each row made only when it is reached."""
    plain_keys = not isinstance(value, dict) or all(isinstance(key, str) for key in value)
    if not holds_rows(value) or not plain_keys:
        encoder = json.JSONEncoder(indent=2, default=rows_as_list)
        yield from _indented(encoder.iterencode(value), depth)
        return
    items = value.items() if isinstance(value, dict) else ((None, row) for row in value)
    opener, closer = ("{", "}") if isinstance(value, dict) else ("[", "]")
    inner = "\n" + "  " * (depth + 1)
    separator = opener + inner
    for key, item in items:
        yield separator if key is None else separator + json.dumps(key) + ": "
        yield from iter_json(item, depth + 1)
        separator = "," + inner
    yield opener + closer if separator.startswith(opener) else "\n" + "  " * depth + closer


def _indented(pieces: Iterable[str], depth: int) -> Iterator[str]:
    if not depth:
        yield from pieces
        return
    newline = "\n" + "  " * depth
    for piece in pieces:
        yield piece.replace("\n", newline)


def emit(command: str, result: Any, *, compact: bool = False) -> int:
    """Print an operation's result (data, an ``Outcome`` or a ``Text``);
    returns its exit code."""
    return print_invocation(command, Invocation.of_result(result), compact=compact)


def _batched(pieces: Iterable[str], size: int = 1 << 16) -> Iterator[str]:
    """Small encoder pieces joined into writes of about ``size`` characters."""
    batch: list[str] = []
    length = 0
    for piece in pieces:
        batch.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(batch)
            batch, length = [], 0
    if batch:
        yield "".join(batch)


def to_json(result: Any) -> str:
    """Indented JSON; a list of rows prints one row per line (easy to scan and
    grep, and the C encoder makes it cheap for a thousand models)."""
    if isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        return "[\n" + ",\n".join("  " + json.dumps(row) for row in result) + "\n]"
    return json.dumps(result, indent=2, default=rows_as_list)


def write_stdout(text: str) -> int:
    """Write ``text`` on stdout; a reader that stopped early is not an error."""
    return write_pieces([text], EXIT_OK)


def write_pieces(pieces: Iterable[str], code: int) -> int:
    """Write ``pieces`` on stdout and return ``code``; a reader that stopped
    early (``| head``) is not an error."""
    try:
        for piece in pieces:
            sys.stdout.write(piece)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early: say nothing more, here or at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return code
