"""Report rows made when read (``loader.rows``), and the CLI's streamed JSON."""

from __future__ import annotations

import json

import pytest

from loader.frontdoors.output import iter_json
from loader.rows import Rows, plain, rows_as_list

made: list[int] = []


def row(n: int) -> dict:
    made.append(n)
    return {"name": f"m{n}", "changes": [{"field": "a.b", "before": None, "after": "é\n${x}"}]}


def test_rows_read_like_a_list_and_are_made_on_each_read():
    made.clear()
    rows = Rows([1, 2, 3], row)
    assert made == []  # nothing made until read
    assert len(rows) == 3 and rows[1]["name"] == "m2" and rows[-1]["name"] == "m3"
    assert [r["name"] for r in rows] == ["m1", "m2", "m3"]
    assert rows[:2] == [row(1), row(2)]
    assert rows == [row(1), row(2), row(3)] and rows != [row(1)]
    assert Rows([], row) == [] and not Rows([], row)
    assert plain({"added": rows, "n": [rows]}) == {
        "added": [row(1), row(2), row(3)],
        "n": [[row(1), row(2), row(3)]],
    }
    with pytest.raises(TypeError):
        hash(rows)


@pytest.mark.parametrize(
    "report",
    [
        {"source": "ollama", "added": Rows([1, 2], row), "updated": [], "missing": []},
        {"added": Rows([], row), "written": False},
        {"nested": {"deep": Rows([5], row)}, "added": Rows([7], row)},
        {},
        {1: "a non-text key", "added": Rows([3], row)},
        {"unchanged": ["a", "b"], "refused": [{"model": "x", "error": "bad"}]},
    ],
    ids=["report", "empty-rows", "nested", "empty", "int-key", "no-rows"],
)
def test_streamed_json_is_what_json_dumps_writes(report):
    expected = json.dumps(plain(report), indent=2)
    assert "".join(iter_json(report)) == expected
    assert json.dumps(report, indent=2, default=rows_as_list) == expected


def test_streamed_rows_are_made_one_at_a_time():
    made.clear()
    pieces = iter_json({"added": Rows(list(range(5)), row)})
    next(pieces), next(pieces), next(pieces)
    assert made == [0]  # the first row only, while it is being written
