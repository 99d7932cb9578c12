"""literal(): outside text survives a round trip through OmegaConf unchanged."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from loader.literal import escape, interpolates, literal

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


@pytest.mark.parametrize("text", SAMPLES)
def test_escaped_text_never_interpolates(text: str) -> None:
    assert not interpolates(escape(text))


@pytest.mark.parametrize(
    ("text", "live"),
    [("${x}", True), ("a \\\\${x}", True), ("a \\${x}", False), ("no opener", False)],
)
def test_interpolates_tells_live_openers_from_escaped_ones(text: str, live: bool) -> None:
    assert interpolates(text) is live


def test_the_snapshot_and_its_fast_path_return_the_literal_text(tmp_path, monkeypatch) -> None:
    """A layer holding only escaped text is still served from the snapshot
    (nothing in it depends on config), and both return the text itself."""
    from loader.config import load_config
    from loader.registry.core import Registry

    monkeypatch.setenv("HOME", "/home/should-not-appear")
    text = "${oc.env:HOME} and ${missing}"
    entry = {"name": "m", "backend": "vllm", "family": escape(text)}
    (tmp_path / "model_registry.curated.json").write_text("[]\n")
    (tmp_path / "model_registry.discovered.json").write_text(json.dumps([entry]))

    def load() -> Registry:
        registry = Registry(load_config([f"registry.dir={tmp_path}"]))
        registry.load()
        return registry

    first = load()  # composes the layers, writes the snapshot and its stamps
    assert first._baseline[0] == "layers"
    assert first.get("m").family == text
    snapshot = json.loads((tmp_path / "model_registry.json").read_text())
    assert snapshot[0]["family"] == text
    second = load()
    assert second._baseline[0] == "snapshot"  # the fast path
    assert second.get("m").family == text
