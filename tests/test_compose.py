"""Composition rules, checked against the real ImageWorks registry."""

from __future__ import annotations

import json

from conftest import CURATED, DISCOVERED, REAL_REGISTRY, SNAPSHOT, read_json, write_json

from loader.config import load_config
from loader.registry.compose import CURATED as FROM_CURATED
from loader.registry.compose import DISCOVERED as FROM_DISCOVERED
from loader.registry.compose import DynamicFields, merge_entry, parse_entry_overrides
from loader.registry.core import Registry

DYNAMIC = DynamicFields(
    [
        "artifacts",
        "version_lock",
        "performance",
        "probes",
        "download_*",
        "downloaded_at",
        "last_accessed",
    ]
)


def assert_holds(actual, expected, where):
    """``actual`` has every value of ``expected`` (the model adds schema defaults)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            assert_holds(actual[key], value, (*where, key))
    else:
        assert actual == expected, where


def registry_for(folder, *overrides):
    return Registry(load_config([f"registry.dir={folder}", *overrides]))


def test_real_fixture_composes_to_the_real_snapshot_byte_for_byte(real_registry):
    expected = (REAL_REGISTRY / SNAPSHOT).read_text(encoding="utf-8")
    (real_registry / SNAPSHOT).unlink()
    registry = registry_for(real_registry)
    registry.load()
    assert registry.snapshot_text() == expected
    # the load regenerated the missing snapshot with exactly that content
    assert (real_registry / SNAPSHOT).read_text(encoding="utf-8") == expected


def test_static_fields_agree_with_the_real_snapshot_and_dynamic_come_from_discovered(
    real_registry,
):
    entries = registry_for(real_registry).load()
    snapshot = {e["name"]: e for e in read_json(REAL_REGISTRY / SNAPSHOT)}
    discovered = {e["name"]: e for e in read_json(REAL_REGISTRY / DISCOVERED)}
    assert set(entries) == set(snapshot) and len(entries) == 16
    for name, entry in entries.items():
        dumped = entry.model_dump()
        for key, value in snapshot[name].items():
            assert_holds(dumped[key], value, (name, key))
        for key in ("artifacts", "version_lock", "performance", "probes", "download_files"):
            assert dumped[key] == discovered[name][key], (name, key)


def test_the_two_documented_disagreements_resolve_to_curated(real_registry):
    entries = registry_for(real_registry).load()
    discovered = {e["name"]: e for e in read_json(REAL_REGISTRY / DISCOVERED)}
    curated = {e["name"]: e for e in read_json(REAL_REGISTRY / CURATED)}

    name = "qwen2.5vl_7b_(Q4_K_M)"
    assert discovered[name]["capabilities"]["vision"] == {
        "enabled": True,
        "target_long_edge": 448,
    }
    assert entries[name].capabilities["vision"] is True

    name = "qwen3-vl-8b-instruct_(FP8)"
    assert (
        discovered[name]["backend_config"]["extra_args"]
        != curated[name]["backend_config"]["extra_args"]
    )
    assert entries[name].backend_config.extra_args == curated[name]["backend_config"]["extra_args"]


def test_six_real_entries_hold_the_none_string_and_select_repairs_it(real_registry):
    from loader.registry.service import select_model

    registry = registry_for(real_registry)
    entries = registry.load()
    broken = [n for n, e in entries.items() if e.served_model_id == "None"]
    assert len(broken) == 6
    for name in broken:
        selected = select_model(name, registry=registry)
        assert selected.internal_model_id == name
    assert select_model("qwen3_8b_(Q4_K_M)", registry=registry).internal_model_id == "qwen3:8b"


def test_curated_null_is_no_opinion_and_lists_replace_whole():
    curated = {
        "name": "m",
        "display_name": None,
        "roles": ["caption"],
        "backend_config": {"port": None, "host": "curated-host"},
    }
    discovered = {
        "name": "m",
        "display_name": "From discovery",
        "roles": ["caption", "keywords", "chat"],
        "backend_config": {"port": 8123, "host": "old-host", "extra_args": ["--x"]},
    }
    prov: dict = {}
    merged = merge_entry(curated, discovered, DYNAMIC, prov)
    assert merged["display_name"] == "From discovery"
    assert merged["roles"] == ["caption"]
    assert merged["backend_config"] == {"port": 8123, "host": "curated-host", "extra_args": ["--x"]}
    assert prov[("display_name",)] == FROM_DISCOVERED
    assert prov[("backend_config", "host")] == FROM_CURATED
    assert prov[("backend_config", "port")] == FROM_DISCOVERED


def test_dynamic_fields_discovered_wins_even_over_a_curated_value():
    curated = {
        "name": "m",
        "version_lock": {"locked": True, "expected_aggregate_sha256": "old"},
        "download_path": "/curated/path",
    }
    discovered = {
        "name": "m",
        "version_lock": {"locked": False, "expected_aggregate_sha256": None},
    }
    merged = merge_entry(curated, discovered, DYNAMIC)
    # an unlock (and a cleared hash) is never masked by the old curated value
    assert merged["version_lock"] == {"locked": False, "expected_aggregate_sha256": None}
    # where tooling has no value yet, the curated one still applies
    assert merged["download_path"] == "/curated/path"


def test_merge_does_not_modify_the_layers():
    curated = {"name": "m", "backend_config": {"port": 1}}
    discovered = {"name": "m", "backend_config": {"port": 2, "host": "h"}}
    before = json.dumps([curated, discovered])
    merge_entry(curated, discovered, DYNAMIC)
    assert json.dumps([curated, discovered]) == before


def test_override_names_with_dots_and_parentheses_match_longest_first():
    names = ["qwen2.5", "qwen2.5-vl-7b-instruct_(AWQ)", "a.b"]
    parsed = parse_entry_overrides(
        [
            "qwen2.5-vl-7b-instruct_(AWQ).backend_config.port=9000",
            "qwen2.5.display_name=Short",
            'a.b.roles=["x"]',
            "a.b.deprecated=true",
        ],
        names,
    )
    assert [(o.name, o.path, o.value) for o in parsed] == [
        ("qwen2.5-vl-7b-instruct_(AWQ)", ("backend_config", "port"), 9000),
        ("qwen2.5", ("display_name",), "Short"),
        ("a.b", ("roles",), ["x"]),
        ("a.b", ("deprecated",), True),
    ]


def test_interpolation_resolves_against_config_and_environment(tmp_path, monkeypatch):
    folder = tmp_path / "reg"
    folder.mkdir()
    write_json(
        folder / CURATED,
        [
            {
                "name": "vl_(AWQ)",
                "backend": "vllm",
                "backend_config": {
                    "port": "${backends.vllm.port}",
                    "model_path": "${paths.models}/Qwen/VL",
                    "host": "${oc.env:TEST_VL_HOST,fallback-host}",
                },
            }
        ],
    )
    monkeypatch.setenv("IMAGEWORKS_MODEL_ROOT", "/weights")
    monkeypatch.setenv("TEST_VL_HOST", "gpu-box")
    entry = registry_for(folder, "backends.vllm.port=24555").load()["vl_(AWQ)"]
    assert entry.backend_config.port == 24555
    assert entry.backend_config.model_path == "/weights/Qwen/VL"
    assert entry.backend_config.host == "gpu-box"
    # the layer keeps its raw text; the snapshot holds resolved values, of the
    # default configuration only: a one-run override never reaches it (issue 17)
    assert read_json(folder / CURATED)[0]["backend_config"]["port"] == "${backends.vllm.port}"
    assert not (folder / SNAPSHOT).exists()
    registry_for(folder).load()
    resolved = read_json(folder / SNAPSHOT)[0]["backend_config"]
    assert resolved == {"port": 24001, "model_path": "/weights/Qwen/VL", "host": "gpu-box"}


def _with_port_interpolations(folder, count=3):
    """``count`` curated vLLM entries whose port is ``${backends.vllm.port}``."""
    entries = read_json(folder / CURATED)
    vllm = [e for e in entries if e.get("backend") == "vllm"][:count]
    assert len(vllm) == count
    for entry in vllm:
        entry.setdefault("backend_config", {})["port"] = "${backends.vllm.port}"
    write_json(folder / CURATED, entries)
    return [e["name"] for e in vllm]


def test_a_text_interpolated_in_many_entries_follows_each_composition(real_registry):
    # The interpolator remembers a scalar per composition; a new composition
    # (another config) resolves again.
    names = _with_port_interpolations(real_registry)
    first = registry_for(real_registry, "backends.vllm.port=8101").load(full=True)
    assert {first[n].backend_config.port for n in names} == {8101}
    second = registry_for(real_registry, "backends.vllm.port=8102").load(full=True)
    assert {second[n].backend_config.port for n in names} == {8102}


def test_a_repeated_interpolation_is_parsed_once_per_composition(real_registry, monkeypatch):
    from loader.registry import interpolation

    names = _with_port_interpolations(real_registry)
    parsed: list[str] = []
    original = interpolation.Interpolator.__init__

    def counting_init(self, raw_config):
        original(self, raw_config)
        cfg = self._cfg

        class Counting:
            def __setitem__(self, key, text):
                parsed.append(text)
                cfg[key] = text

            def __getitem__(self, key):
                return cfg[key]

        self._cfg = Counting()

    monkeypatch.setattr(interpolation.Interpolator, "__init__", counting_init)
    entries = registry_for(real_registry).load(full=True)
    assert {entries[n].backend_config.port for n in names} == {24001}
    assert parsed.count("${backends.vllm.port}") == 1
