"""The fast indented encoder writes exactly the bytes of ``json.dumps(indent=N)``."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from conftest import DEMO_REGISTRY, REAL_REGISTRY, ROOT

from loader.registry import indent
from loader.registry.layers import JsonStyle

TRICKY = ['"', "\\", "[", "]", "{", "}", ",", ": ", "\n", "\x00", "\u2028", "é", "🙂", "\\u0041"]
SLOT = "\x00imageworks-loader:nested\x00"  # the encoder's own placeholder, as data


def standard(data, step, ascii_only: bool) -> str:
    return json.dumps(data, indent=step, ensure_ascii=ascii_only, allow_nan=False)


def same_everywhere(data) -> None:
    for step in (0, 1, 2, 4, "\t"):
        for ascii_only in (False, True):
            expected = standard(data, step, ascii_only)
            assert indent.dumps(data, step, ascii_only) == expected
            assert "".join(indent.iter_dumps(data, step, ascii_only)) == expected
            if isinstance(data, list):  # a save writes new entries from an iterator
                made = "".join(indent.iter_dumps(iter(data), step, ascii_only))
                assert made == expected


@pytest.mark.parametrize("folder", [REAL_REGISTRY, DEMO_REGISTRY], ids=["real", "demo"])
def test_the_real_registry_files_encode_to_the_same_bytes(folder):
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        same_everywhere(data)
        style = JsonStyle(indent=2, ensure_ascii=False)
        expected = (standard(data, 2, False) + "\n").encode()
        assert b"".join(style.pieces(data, size=4096)) == expected
        if isinstance(data, list):  # a layer, as a save writes it
            assert b"".join(style.pieces(iter(data), size=4096)) == expected
            compact = JsonStyle(indent=None, ensure_ascii=False)
            assert b"".join(compact.pieces(iter(data))) == b"".join(compact.pieces(data))


def test_a_generated_registry_encodes_to_the_same_bytes(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gen_registry.py"), "120", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for path in sorted(tmp_path.glob("*.json")):
        same_everywhere(json.loads(path.read_text(encoding="utf-8")))


def random_value(rng: random.Random, depth: int):
    kind = rng.randrange(10 if depth < 5 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 10**20, 7])
    if kind == 2:
        return rng.choice([0.5, -0.0, 1e-7, 1e300, 3.0])
    if kind in (3, 4, 5):
        return "".join(rng.choice(TRICKY + ["a", "b", " "]) for _ in range(rng.randrange(6)))
    if kind in (6, 7):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = [random_value(rng, 6) if rng.random() < 0.8 else rng.randrange(9) for _ in range(5)]
    return {k: random_value(rng, depth + 1) for k in keys if isinstance(k, str | int)}


@pytest.mark.parametrize("seed", range(40))
def test_random_documents_with_tricky_strings_encode_to_the_same_bytes(seed):
    rng = random.Random(seed)
    same_everywhere([random_value(rng, 0) for _ in range(rng.randrange(1, 6))])


@pytest.mark.parametrize(
    "data",
    [
        [],
        {},
        [[]],
        {"a": {}, "b": [[], {}], "c": [1, [2, [3, {}]]]},
        (1, (2, [3])),
        {2: "int key", 1.5: "float key", True: [1], None: {"x": 1}},
        [SLOT, [1]],
        {SLOT: [SLOT, {"a": SLOT}], "b": {"c": [1]}},
    ],
    ids=["empty-list", "empty-dict", "nested-empty", "mixed", "tuples", "keys", "slot", "slots"],
)
def test_edge_cases_encode_to_the_same_bytes(data):
    same_everywhere(data)


@pytest.mark.parametrize(
    "bad",
    [[float("nan")], {"a": [1, {"b": float("inf")}]}, {float("nan"): 1}, [object()], {(1,): 1}],
    ids=["nan", "nested-inf", "nan-key", "object", "tuple-key"],
)
def test_refusals_are_the_standard_encoders_own(bad):
    with pytest.raises((ValueError, TypeError)) as expected:
        standard(bad, 2, False)
    with pytest.raises(expected.type) as ours:
        indent.dumps(bad, 2)
    assert str(ours.value) == str(expected.value)


def test_a_cycle_is_refused():
    cycle: list = []
    cycle.append({"a": [cycle]})
    with pytest.raises(ValueError, match="Circular reference"):
        indent.dumps(cycle, 2)
