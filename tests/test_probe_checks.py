"""The vision probe's pieces: its images, MIME detection, answer checks, settings."""

from __future__ import annotations

import importlib.util
import io

import pytest
from conftest import folder_digest
from probe_support import QWEN_VL, SERVER, image_bytes

from loader.config import load_config
from loader.errors import RegistryLoadError
from loader.probe.vision import (
    COLOURS,
    image_mime,
    names_colour,
    names_word,
    run_vision_probe,
    solid_png,
    visible_answer,
)
from loader.registry.core import Registry


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("probe.rounds=0", "config probe.rounds: must be a whole number > 0: 0"),
        ("probe.retries=1.5", "config probe.retries: must be a whole number ≥ 0: 1.5"),
        ("probe.timeout_s=abc", "config probe.timeout_s: must be a number > 0: 'abc'"),
        ("probe.prompt=''", "config probe.prompt: empty"),
    ],
)
def test_bad_probe_settings_are_refused_in_one_line(demo_registry, override, message):
    registry = Registry(load_config([f"registry.dir={demo_registry}", override]))
    before = folder_digest(demo_registry)
    with pytest.raises(RegistryLoadError) as caught:
        run_vision_probe(QWEN_VL, registry=registry)
    assert str(caught.value) == message
    assert folder_digest(demo_registry) == before


def _server_module():
    spec = importlib.util.spec_from_file_location("openai_vision", SERVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("colour", list(COLOURS))
def test_the_generated_png_decodes_to_its_colour(colour):
    from PIL import Image

    data = solid_png(COLOURS[colour])
    assert image_mime(data) == "image/png"
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (64, 64)
        assert image.convert("RGB").getcolors() == [(64 * 64, COLOURS[colour])]
    assert _server_module().png_mean_rgb(data) == COLOURS[colour]


def test_mime_types_by_magic_bytes():
    for fmt in ("PNG", "JPEG", "WEBP", "GIF"):
        assert image_mime(image_bytes(fmt, (1, 2, 3))) == f"image/{fmt.lower()}"
    assert image_mime(b"RIFF\0\0\0\0WAVEfmt ") is None  # RIFF, but audio
    assert image_mime(b"") is None and image_mime(b"%PDF-1.7") is None


@pytest.mark.parametrize(
    ("answer", "colour", "named"),
    [
        ("Green", "green", True),
        ("The square is GREEN.", "green", True),
        ("green-ish", "green", True),
        ("greenish", "green", False),
        ("I cannot see images", "green", False),
        ("red or green", "green", False),  # hedging between colours is not seeing
        ("red, green, blue, yellow, black, white", "white", False),
        ("Off-white", "white", True),
    ],
)
def test_names_colour(answer, colour, named):
    assert names_colour(answer, colour) is named


def test_names_word_and_thinking_blocks():
    assert names_word("A Cat on a mat", "cat") and not names_word("concatenate", "cat")
    assert names_word("It is C++ code", "C++")
    assert visible_answer("<think>red? no, maybe blue</think>\nGreen") == "Green"
    assert visible_answer("<think>still thinking about red") == ""
