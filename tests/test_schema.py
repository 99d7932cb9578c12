"""The entry model: capability folding, served-id repair, nulls and extras."""

from __future__ import annotations

import pytest
from conftest import REAL_REGISTRY, SNAPSHOT, read_json

from loader.registry.schema import (
    CANONICAL_CAPABILITIES,
    CAPABILITY_SYNONYMS,
    RegistryEntry,
    canonical_capability,
    capability_of,
    clean_served_model_id,
    normalize_capabilities,
)


@pytest.mark.parametrize(
    ("raw", "expected_true"),
    [
        ({"vl": True}, {"vision"}),
        ({"mm": True, "tool_call": True}, {"vision", "tools"}),
        # The ImageWorks table: thinking and reasoning share one synonym list.
        (
            {"multimodal": 1, "function_calling": True, "reasoner": True},
            {"vision", "tools", "thinking", "reasoning"},
        ),
        (
            {"embed": True, "asr": True, "cot": True},
            {"embedding", "audio", "thinking", "reasoning"},
        ),
        ({"Vision": True, "Tool-Use": True}, {"vision", "tools"}),
        ({"vision": {"enabled": True, "target_long_edge": 448}}, {"vision"}),
        ({"vision": {"enabled": False}, "vl": True}, set()),  # canonical key decides
        ({"vision": False, "image": True}, set()),
        ({"text": False, "chat": True}, set()),
        ({"language": True, "unknown_flag": True}, {"text", "unknown_flag"}),
        ({"tool_calls": True}, {"tools"}),
        ({"thinking": True, "reasoning": False}, {"thinking", "reasoning"}),
        ({}, set()),
        (None, set()),
    ],
)
def test_capabilities_fold_synonyms_into_the_canonical_keys(raw, expected_true):
    folded = normalize_capabilities(raw)
    assert list(folded)[:7] == list(CANONICAL_CAPABILITIES)
    # ``text`` defaults to true (ImageWorks), unless a text key says otherwise.
    default_text = not any(k.lower() in CAPABILITY_SYNONYMS["text"] for k in raw or {})
    expected = expected_true | ({"text"} if default_text else set())
    assert {key for key in CANONICAL_CAPABILITIES if folded[key]} == expected - {"unknown_flag"}
    assert folded["thinking"] == folded["reasoning"]
    for canonical, synonyms in CAPABILITY_SYNONYMS.items():
        for synonym in synonyms:  # every alias answers, and agrees with its capability
            assert folded[synonym] == folded[canonical], synonym
            assert capability_of(raw, synonym) == folded[canonical], synonym
    if "unknown_flag" in expected_true:
        assert folded["unknown_flag"] is True


def test_every_real_capability_map_folds_to_its_canonical_values():
    for entry in read_json(REAL_REGISTRY / SNAPSHOT):
        raw = entry["capabilities"]
        folded = normalize_capabilities(raw)
        for key in CANONICAL_CAPABILITIES:
            stored = raw[key]
            assert folded[key] is (stored["enabled"] if isinstance(stored, dict) else stored)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("vl", "vision"),
        ("tools", "tools"),
        ("function-calling", "tools"),
        ("r1", "thinking"),
        ("reasoning", "reasoning"),
        ("tool_calls", "tools"),
        ("x", None),
    ],
)
def test_capability_names_resolve_to_canonical_keys(name, canonical):
    assert canonical_capability(name) == canonical


@pytest.mark.parametrize("absent", ["None", "none", "null", "", "  ", None])
def test_the_old_none_string_bug_reads_as_no_served_id(absent):
    assert clean_served_model_id(absent) is None
    assert RegistryEntry(name="m", served_model_id=absent).served_id is None


def test_a_real_served_id_is_kept():
    assert RegistryEntry(name="m", served_model_id="qwen3:8b").served_id == "qwen3:8b"


def test_nulls_read_as_empty_and_unknown_keys_are_kept():
    entry = RegistryEntry.model_validate(
        {
            "name": "m",
            "roles": None,
            "backend_config": None,
            "artifacts": {"aggregate_sha256": "", "files": None},
            "metadata": None,
            "vendor_extension": {"x": 1},
        }
    )
    assert entry.roles == [] and entry.metadata == {}
    assert entry.backend_config.port is None and entry.artifacts.files == []
    assert entry.model_extra == {"vendor_extension": {"x": 1}}
    assert entry.model_dump()["vendor_extension"] == {"x": 1}


def test_every_field_of_the_real_registry_is_declared():
    declared = set(RegistryEntry.model_fields)
    for entry in read_json(REAL_REGISTRY / SNAPSHOT):
        undeclared = set(entry) - declared
        assert not undeclared, (entry["name"], undeclared)
