"""literal(): outside text survives a round trip through OmegaConf unchanged."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from loader.literal import escape, literal

SAMPLES = [
    "${oc.env:HOME}",
    "${missing}",
    "qwen ${oc.env:PATH} 7b",
    "x\\${missing}y",
    "a\\b ${x} \\\\${y}",
    "${",
    "${a${b}}",
    "\\",
    "trailing\\",
    "plain text, no opener",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_escaped_text_resolves_to_itself(text: str) -> None:
    cfg = OmegaConf.create({"HOME": "/should/not/appear"})
    cfg["slot"] = escape(text)
    assert cfg["slot"] == text


def test_text_without_an_opener_is_untouched() -> None:
    assert escape("a\\b") == "a\\b"


def test_literal_walks_nested_values_not_keys() -> None:
    data = {"family": "${oc.env:HOME}", "tags": ["${x}", 3, None], "${k}": {"v": "ok"}}
    escaped = literal(data)
    assert escaped == {
        "family": "\\${oc.env:HOME}",
        "tags": ["\\${x}", 3, None],
        "${k}": {"v": "ok"},
    }
