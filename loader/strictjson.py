"""Strict JSON for registry data: finite numbers only, bounded nesting.

Python's ``json`` accepts ``NaN`` and ``Infinity`` (which strict parsers
reject, so we must never write them) and recurses once per nesting level
(so a deep enough file ends in ``RecursionError``). Everything that reads
registry JSON goes through ``loads``; everything that walks it afterwards may
rely on at most ``MAX_DEPTH`` levels.
"""

from __future__ import annotations

import json
from typing import Any

# Real registry entries nest at most ~5 levels; this leaves ample room.
MAX_DEPTH = 64

Where = tuple[str, ...]


class StrictJsonError(ValueError):
    """Valid JSON that registry data may not hold; ``where`` is the path to it
    (entry index first for a layer), ``line_col`` a text position when known."""

    def __init__(
        self, problem: str, where: Where = (), line_col: str = "", document: Any = None
    ) -> None:
        super().__init__(problem)
        self.problem, self.where, self.line_col = problem, where, line_col
        self.document = document  # the parsed data, when parsing got that far


class _NonFinite:
    def __init__(self, token: str) -> None:
        self.token = token


def _refuse_constant(token: str) -> Any:
    raise StrictJsonError(f"{token} is not a finite number (strict JSON has no {token})")


def loads(text: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity and nesting beyond ``MAX_DEPTH``.

    Raises ``json.JSONDecodeError`` for invalid JSON and ``StrictJsonError``
    (with the path to the offending value) for the rest.
    """
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except StrictJsonError:
        # Rare: parse again keeping markers, to say where the value is.
        data = json.loads(text, parse_constant=_NonFinite)
        where, token = _find_non_finite(data)
        raise StrictJsonError(
            f"{token} is not a finite number (strict JSON has no {token})", where, document=data
        ) from None
    except RecursionError:
        raise StrictJsonError(
            f"nested more than {MAX_DEPTH} levels deep", line_col=_deep_position(text)
        ) from None
    try:
        check_depth(data)
    except StrictJsonError as exc:
        exc.document = data
        raise
    return data


def check_depth(data: Any, limit: int = MAX_DEPTH) -> None:
    """Raise ``StrictJsonError`` naming the first value nested beyond ``limit``."""
    # Level by level, containers only, no paths: this runs on every layer read.
    level = [data] if type(data) is dict or type(data) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            raise StrictJsonError(f"nested more than {limit} levels deep", _deep_path(data, limit))
        deeper: list[Any] = []
        for node in level:
            values = node.values() if type(node) is dict else node
            deeper += [v for v in values if type(v) is dict or type(v) is list]
        level = deeper


def _deep_path(data: Any, limit: int) -> Where:
    stack: list[tuple[Any, Where]] = [(data, ())]
    while stack:
        node, where = stack.pop()
        if len(where) >= limit:
            return where
        if type(node) is dict:
            stack.extend((v, (*where, k)) for k, v in node.items() if type(v) in (dict, list))
        elif type(node) is list:
            stack.extend(
                (v, (*where, str(i))) for i, v in enumerate(node) if type(v) in (dict, list)
            )
    return ()


def _find_non_finite(data: Any) -> tuple[Where, str]:
    stack: list[tuple[Any, Where]] = [(data, ())]
    while stack:
        node, where = stack.pop()
        if isinstance(node, _NonFinite):
            return where, node.token
        if isinstance(node, dict):
            stack.extend((v, (*where, k)) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, (*where, str(i))) for i, v in reversed(list(enumerate(node))))
    return (), "NaN"  # unreachable: the first parse found one


def _deep_position(text: str) -> str:
    """``line L column C`` where nesting first exceeds ``MAX_DEPTH`` (error path only)."""
    depth, in_string, escaped = 0, False, False
    for pos, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, pos) + 1
                return f"line {line} column {pos - (text.rfind(chr(10), 0, pos) + 1) + 1}"
        elif char in "]}":
            depth -= 1
    return ""
