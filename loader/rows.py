"""Report rows made when they are read, not all at once.

An import of 10,000 new models reports about 30 field changes for each: as
plain dicts that is ~50 MB, held only to be printed. ``Rows`` is a read-only
sequence that makes each row from its source when it is reached, so the CLI
streams the report (``loader.frontdoors.output``) and the rows never exist
together. Anything that needs plain data (a sweep's result file, doit's
stored values) turns it into a list with ``plain``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class Rows(Sequence[dict[str, Any]], Generic[T]):
    """``make(item)`` for each of ``items``, made on each read."""

    __slots__ = ("_items", "_make")

    def __init__(self, items: Sequence[T], make: Callable[[T], dict[str, Any]]) -> None:
        self._items = items
        self._make = make

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._make(item) for item in self._items[index]]
        return self._make(self._items[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(self._make, self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Rows | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compared by content, like a list

    def __repr__(self) -> str:
        return f"Rows({list(self)!r})"


def plain(value: Any) -> Any:
    """``value`` with every ``Rows`` inside it turned into a list (for
    ``json.dumps`` and anything else that wants plain data)."""
    if isinstance(value, Rows):
        return [plain(row) for row in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def rows_as_list(value: Any) -> list[dict[str, Any]]:
    """``json.dumps(..., default=rows_as_list)``: ``Rows`` become lists."""
    if isinstance(value, Rows):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def holds_rows(value: Any) -> bool:
    """True when ``value`` is ``Rows`` or a dict with ``Rows`` among its values."""
    return isinstance(value, Rows) or (
        isinstance(value, dict) and any(isinstance(v, Rows) for v in value.values())
    )
