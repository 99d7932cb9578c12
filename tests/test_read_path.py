"""The read path: a confirmed snapshot is served as plain data (no pydantic,
no OmegaConf, no merge), gives the same rows as the validated path, and any
edit of a layer is composed and validated again before the next answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CURATED, DISCOVERED, ROOT, SNAPSHOT, read_json, run_cli, write_json

from loader import operations
from loader.config import load_config
from loader.registry.core import Registry

GENERATOR = ROOT / "bench" / "gen_registry.py"

PROBE = """
import io, json, sys, contextlib
from loader import cli
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = cli.main(sys.argv[1:])
HEAVY = ("pydantic", "omegaconf", "hydra", "loader.registry.schema")
heavy = [m for m in HEAVY if m in sys.modules]
# Standard modules that cost a `list` milliseconds each on Python 3.11.
COSTLY = ("dataclasses", "inspect", "hashlib", "socket", "shutil", "threading", "datetime")
costly = [m for m in COSTLY if m in sys.modules]
rows = len(json.loads(out.getvalue()))
print(json.dumps({"code": code, "rows": rows, "heavy": heavy, "costly": costly}))
"""


def probe(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("command", ["list", "metrics"])
def test_a_confirmed_snapshot_is_read_without_pydantic_or_omegaconf(real_registry, command):
    on = f"registry.dir={real_registry}"
    first = probe(command, on)  # composes the layers, confirms the snapshot
    assert first["code"] == 0 and "pydantic" in first["heavy"]
    again = probe(command, on)
    assert again == {"code": 0, "rows": 16, "heavy": [], "costly": []}


def test_an_invalid_layer_edit_is_refused_by_the_next_list_naming_the_field(real_registry):
    on = f"registry.dir={real_registry}"
    assert run_cli("list", on).returncode == 0
    assert probe("list", on)["heavy"] == []  # the snapshot is confirmed: the plain path
    entries = read_json(real_registry / CURATED)
    entries[3]["backend_config"]["port"] = "abc"
    write_json(real_registry / CURATED, entries)
    refused = run_cli("list", on)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.strip() == (
        f"imageworks-loader: error: {real_registry / CURATED}: entry {entries[3]['name']!r} "
        f'(index 3): backend_config.port: not an integer: "abc"'
    )


def test_a_valid_layer_edit_is_seen_by_the_next_list(real_registry):
    on = f"registry.dir={real_registry}"
    assert run_cli("list", on).returncode == 0
    entries = read_json(real_registry / DISCOVERED)
    entries[0]["version_lock"] = {"locked": True}
    write_json(real_registry / DISCOVERED, entries)
    rows = {row["name"]: row for row in run_cli("list", on).json()}
    assert rows[entries[0]["name"]]["locked"] is True


def both_paths(folder: Path) -> tuple[list, list, list, list]:
    registry = Registry(load_config([f"registry.dir={folder}"]))
    registry.load()  # confirms the snapshot
    assert registry.confirmed_snapshot() is not None
    plain = operations.list_op(registry), operations.metrics_op(registry)
    registry.confirmed_snapshot = lambda: None  # force the validated path
    validated = operations.list_op(registry), operations.metrics_op(registry)
    assert registry.entries  # it really loaded entries this time
    return (*plain, *validated)


def test_plain_and_validated_rows_agree_on_the_real_registry(real_registry):
    plain_list, plain_metrics, list_rows, metrics_rows = both_paths(real_registry)
    assert plain_list == list_rows and len(list_rows) == 16
    assert plain_metrics == metrics_rows


def test_plain_and_validated_rows_agree_on_a_generated_registry(tmp_path):
    folder = tmp_path / "gen"
    subprocess.run([sys.executable, str(GENERATOR), "60", str(folder)], check=True)
    plain_list, plain_metrics, list_rows, metrics_rows = both_paths(folder)
    assert plain_list == list_rows and len(list_rows) == 60
    assert plain_metrics == metrics_rows


def test_plain_and_validated_rows_agree_on_defaults_and_lax_values(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    odd = [
        {"name": "bare"},  # every field from the schema's defaults
        {
            "name": "nulls",
            "roles": None,
            "artifacts": None,
            "version_lock": None,
            "capabilities": None,
        },  # fmt: skip
        {"name": "yes", "version_lock": {"locked": "yes"}, "capabilities": {"vl": True}},
        {
            "name": "off",
            "version_lock": {"locked": "Off"},
            "capabilities": {"vision": False, "image": True},
        },  # fmt: skip
        {
            "name": "one",
            "version_lock": {"locked": 1},
            "artifacts": {"aggregate_sha256": None},
            "roles": ["caption"],
            "backend": "ollama",
        },  # fmt: skip
        {
            "name": "deep",
            "capabilities": {"Vision": {"enabled": True}},
            "artifacts": {"aggregate_sha256": "ab" * 32},
        },  # fmt: skip
    ]
    write_json(folder / DISCOVERED, odd)
    write_json(folder / CURATED, [{"name": "curated-only", "capabilities": {"multimodal": 1}}])
    plain_list, plain_metrics, list_rows, metrics_rows = both_paths(folder)
    assert plain_list == list_rows and len(list_rows) == 7
    assert plain_metrics == metrics_rows
    assert (folder / SNAPSHOT).is_file()


# --- the hot path: select_model ---------------------------------------------------


def test_select_model_sees_an_edit_saved_just_before_the_call(real_registry):
    from loader.registry.service import select_model

    registry = Registry(load_config([f"registry.dir={real_registry}"]))
    name = "qwen2.5-vl-7b-instruct_(AWQ)"
    first = select_model(name, ["vision"], registry=registry)
    assert select_model(name, ["vision"], registry=registry) == first  # from the index
    for port in (24100, 24101, 24102):  # each write at once followed by a call
        entries = read_json(real_registry / CURATED)
        for entry in entries:
            if entry["name"] == name:
                entry["backend_config"] = {**(entry.get("backend_config") or {}), "port": port}
        write_json(real_registry / CURATED, entries)
        assert select_model(name, registry=registry).endpoint_url.endswith(f":{port}/v1")


def test_select_model_sees_entries_replaced_or_changed_in_memory(real_registry):
    from loader.registry.service import select_model

    registry = Registry(load_config([f"registry.dir={real_registry}"]))
    name = "qwen3_8b_(Q4_K_M)"
    before = select_model(name, registry=registry)
    assert before.capabilities["vision"] is False
    before.capabilities["vision"] = True  # the caller's copy: the index is not touched
    assert select_model(name, registry=registry).capabilities["vision"] is False

    entry = registry.get(name)
    entry.capabilities = {**entry.capabilities, "vision": True}
    assert select_model(name, ["vl"], registry=registry).capabilities["vision"] is True
    entry.backend_config.port = 9123
    assert select_model(name, registry=registry).endpoint_url.endswith(":9123/v1")
    registry.entries[name] = entry.model_copy(update={"backend": "vllm", "served_model_id": "x"})
    assert select_model(name, registry=registry).internal_model_id == "x"


def _interpolate_ollama_ports(folder: Path) -> list[str]:
    """What importers write: each Ollama entry's port as ``${backends.ollama.port}``."""
    curated = {e["name"]: e for e in read_json(folder / CURATED)}
    entries = read_json(folder / DISCOVERED)
    names = []  # those whose port curated leaves to discovered
    for entry in entries:
        if entry.get("backend") == "ollama":
            entry.setdefault("backend_config", {})["port"] = "${backends.ollama.port}"
            pinned = (curated.get(entry["name"], {}).get("backend_config") or {}).get("port")
            if pinned is None:
                names.append(entry["name"])
    write_json(folder / DISCOVERED, entries)
    assert names
    return names


def test_layers_with_config_interpolations_are_read_plain_while_config_agrees(real_registry):
    # Importers write ${paths.models}/… and ${backends.X.port}; the snapshot is
    # still confirmed by stats, plus what those references resolve to.
    names = _interpolate_ollama_ports(real_registry)
    on = f"registry.dir={real_registry}"
    assert probe("list", on)["heavy"]  # composes, confirms the snapshot
    assert probe("list", on) == {"code": 0, "rows": 16, "heavy": [], "costly": []}
    # A run whose config resolves the reference differently composes again.
    moved = probe("list", on, "backends.ollama.port=11500")
    assert "pydantic" in moved["heavy"]
    entries = Registry(load_config([on, "backends.ollama.port=11500"])).load()
    assert {entries[n].backend_config.port for n in names} == {11500}
    assert probe("list", on)["heavy"] == []  # the override run recorded nothing


def test_a_changed_environment_variable_sends_the_read_to_the_layers(real_registry, monkeypatch):
    entries = read_json(real_registry / CURATED)
    name = entries[0]["name"]
    entries[0]["license"] = "${oc.env:IW_TEST_LICENSE,mit}"
    write_json(real_registry / CURATED, entries)
    monkeypatch.delenv("IW_TEST_LICENSE", raising=False)
    on = f"registry.dir={real_registry}"
    assert Registry(load_config([on])).load()[name].license == "mit"
    assert Registry(load_config([on])).confirmed_snapshot() is not None
    monkeypatch.setenv("IW_TEST_LICENSE", "apache-2.0")
    registry = Registry(load_config([on]))
    assert registry.confirmed_snapshot() is None
    assert registry.load()[name].license == "apache-2.0"


def test_an_interpolation_through_another_resolver_is_never_confirmed(real_registry):
    entries = read_json(real_registry / CURATED)
    entries[0]["license"] = "${now:%Y}"
    write_json(real_registry / CURATED, entries)
    on = f"registry.dir={real_registry}"
    Registry(load_config([on])).load()
    assert Registry(load_config([on])).confirmed_snapshot() is None
