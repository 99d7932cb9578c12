"""Switching from the ImageWorks loader (issue 9): its Python API, capability
keys, roles, legacy locks and single-file registries, against real folders
and the real CLI."""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
from pathlib import Path

import pytest
from conftest import (
    CURATED,
    DISCOVERED,
    REAL_REGISTRY,
    SNAPSHOT,
    read_json,
    run_cli,
    sha,
    write,
    write_json,
)

from loader.config import load_config
from loader.errors import (
    CapabilityError,
    RegistryLoadError,
    RegistryWriteError,
    UnknownModelError,
    VersionLockViolation,
)
from loader.registry.core import Registry, get_entry, load_registry, use_registry
from loader.registry.schema import CAPABILITY_SYNONYMS


def on(folder: Path) -> str:
    return f"registry.dir={folder}"


def registry_with(folder: Path, curated: list[dict], discovered: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / CURATED, curated)
    if discovered is not None:
        write_json(folder / DISCOVERED, discovered)
    return folder


def discovered_entry(folder: Path, name: str) -> dict | None:
    if not (folder / DISCOVERED).exists():
        return None
    return next((e for e in read_json(folder / DISCOVERED) if e["name"] == name), None)


# --- the Python API ---------------------------------------------------------------


def test_load_registry_takes_a_folder_or_a_legacy_file_and_never_a_path_as_force(
    real_registry, tmp_path
):
    entries = load_registry(real_registry)
    assert len(entries) == 16
    assert get_entry("qwen3_8b_(Q4_K_M)").backend == "ollama"  # the path became the default
    assert load_registry(str(real_registry), force=True) is entries  # same registry, reloaded

    legacy = tmp_path / "legacy" / SNAPSHOT
    write(legacy, (REAL_REGISTRY / SNAPSHOT).read_bytes())
    single = load_registry(legacy)
    assert sorted(single) == sorted(entries)
    assert single["qwen3_8b_(Q4_K_M)"].model_dump() == entries["qwen3_8b_(Q4_K_M)"].model_dump()

    with pytest.raises(TypeError, match="force=True"):
        load_registry(True)
    with pytest.raises(RegistryLoadError, match="not found"):
        load_registry(tmp_path / "nowhere")


def test_a_legacy_single_file_is_reread_when_it_changes_and_is_never_written(tmp_path):
    legacy = tmp_path / "legacy" / SNAPSHOT
    legacy.parent.mkdir()
    write_json(legacy, [{"name": "a_(X)", "backend": "ollama"}])
    assert list(load_registry(legacy)) == ["a_(X)"]
    write_json(legacy, [{"name": "a_(X)"}, {"name": "b_(Y)"}])
    assert sorted(load_registry(legacy)) == ["a_(X)", "b_(Y)"]
    get_entry("b_(Y)").performance.rolling_samples = 2
    from loader.registry.core import save_registry

    with pytest.raises(RegistryWriteError, match="migrate"):
        save_registry()
    assert read_json(legacy) == [{"name": "a_(X)"}, {"name": "b_(Y)"}]


def test_exceptions_are_catchable_the_imageworks_way():
    for cls in (CapabilityError, VersionLockViolation, RegistryLoadError):
        assert issubclass(cls, RuntimeError)
    assert issubclass(UnknownModelError, KeyError)


def test_verify_model_saves_what_it_updates_unless_told_not_to(tmp_path):
    model = tmp_path / "model"
    write(model / "config.json", b"{}")
    write(model / "weights.bin", b"w" * 1000)
    reg = registry_with(
        tmp_path / "reg", [{"name": "m_(A)", "backend_config": {"model_path": str(model)}}]
    )
    use_registry(Registry(load_config([on(reg)])))
    from loader.integrity.version_locks import verify_model

    result = verify_model(get_entry("m_(A)"), save=False)
    assert discovered_entry(reg, "m_(A)") is None

    result = verify_model(get_entry("m_(A)"))
    saved = discovered_entry(reg, "m_(A)")
    assert saved["artifacts"]["aggregate_sha256"] == result.aggregate_sha256
    assert saved["version_lock"]["last_verified"] == result.last_verified
    assert result.files == 2


# --- capabilities -------------------------------------------------------------------


def test_select_prints_every_imageworks_key_and_require_takes_any_alias(demo_registry):
    result = run_cli("select", "qwen3_8b_(Q4_K_M)", "--require", "tool_calls", on(demo_registry))
    assert result.returncode == 0, result.stderr
    capabilities = result.json()["capabilities"]
    for canonical, synonyms in CAPABILITY_SYNONYMS.items():
        for synonym in synonyms:
            assert capabilities[synonym] == capabilities[canonical], synonym
    assert capabilities["tool_calls"] is True
    assert capabilities["reasoning"] is capabilities["thinking"] is True

    result = run_cli("select", "llama3.1_8b_(Q5_K_M)", "--require", "reasoner", on(demo_registry))
    assert result.returncode == 1
    assert "lacks required capability 'thinking'" in result.stderr


def test_a_curated_canonical_false_wins_over_true_synonyms(tmp_path):
    reg = registry_with(
        tmp_path / "reg",
        [{"name": "m_(A)", "capabilities": {"vision": False, "vl": True, "mm": True}}],
        [{"name": "m_(A)", "capabilities": {"vision": True}}],
    )
    use_registry(Registry(load_config([on(reg)])))
    from loader.registry.service import select_model

    chosen = select_model("m_(A)")
    assert chosen.capabilities["vision"] is False
    assert chosen.capabilities["vl"] is False  # every alias answers as its capability does
    with pytest.raises(CapabilityError):
        select_model("m_(A)", require_capabilities=["vision"])
    result = run_cli("select", "m_(A)", "--require-vision", on(reg))
    assert result.returncode == 1 and "lacks required capability 'vision'" in result.stderr


@pytest.mark.parametrize(
    ("backend_config", "endpoint"),
    [
        ({"base_url": "http://proxy:9999/v1/"}, "http://proxy:9999/v1"),
        ({"host": "https://gpu.lan/ollama/v1/"}, "https://gpu.lan/ollama/v1"),
        ({"host": "gpu.lan/", "port": 8001}, "http://gpu.lan:8001/v1"),
    ],
)
def test_a_trailing_slash_gives_no_double_slash(tmp_path, backend_config, endpoint):
    reg = registry_with(tmp_path / "reg", [{"name": "m_(A)", "backend_config": backend_config}])
    result = run_cli("select", "m_(A)", on(reg))
    assert result.returncode == 0, result.stderr
    assert result.json()["endpoint"] == endpoint
    assert "//" not in endpoint.split("://", 1)[1]


def test_metrics_takes_the_imageworks_name_option(demo_registry):
    by_option = run_cli("metrics", "--name", "qwen3_8b_(Q4_K_M)", on(demo_registry))
    positional = run_cli("metrics", "qwen3_8b_(Q4_K_M)", on(demo_registry))
    assert by_option.returncode == 0, by_option.stderr
    assert by_option.json() == positional.json()
    assert by_option.json()["name"] == "qwen3_8b_(Q4_K_M)"


# --- roles ------------------------------------------------------------------------------


def role_registry(folder: Path) -> Path:
    entries = [
        {
            "name": "big_(A)",
            "roles": ["caption", "chat"],
            "role_priority": {"caption": 10},
            "capabilities": {"vision": True},
        },
        {
            "name": "best_(B)",
            "roles": ["caption"],
            "role_priority": {"caption": 50},
            "capabilities": {"vision": True},
            "deprecated": True,
        },
        {
            "name": "text_(C)",
            "roles": ["caption", "chat"],
            "role_priority": {"caption": 90, "chat": 3},
            "capabilities": {"vision": False, "tool_calls": True},
        },
        {
            "name": "small_(D)",
            "roles": ["caption"],
            "role_priority": {"caption": 10},
            "capabilities": {"vl": True},
        },
        {"name": "norole_(E)", "capabilities": {"vision": True}},
    ]
    return registry_with(folder, entries)


def test_list_roles_prints_each_role_with_its_models_in_preference_order(tmp_path):
    reg = role_registry(tmp_path / "reg")
    result = run_cli("list-roles", on(reg))
    assert result.returncode == 0, result.stderr
    rows = [(r["role"], r["name"], r["priority"]) for r in result.json()]
    assert rows == [
        ("caption", "text_(C)", 90),
        ("caption", "big_(A)", 10),  # equal priorities: by name
        ("caption", "small_(D)", 10),
        ("chat", "text_(C)", 3),
        ("chat", "big_(A)", 0),
    ]
    first = result.json()[0]
    assert first["backend"] == "vllm" and first["display_name"] == "text_(C)"
    assert first["capabilities"] == ["text", "tools"]


def test_select_by_role_follows_the_imageworks_order(tmp_path):
    reg = role_registry(tmp_path / "reg")
    use_registry(Registry(load_config([on(reg)])))
    from loader.registry.roles import list_models_for_role, select_by_role

    assert list_models_for_role("caption") == ["big_(A)", "small_(D)", "text_(C)"]
    # caption requires vision by default: text_(C) has the highest priority but no vision
    assert select_by_role("caption") == "big_(A)"
    assert select_by_role("caption", preferred=["best_(B)", "text_(C)", "small_(D)"]) == "small_(D)"
    assert select_by_role("chat") == "text_(C)"
    assert select_by_role("chat", require_capabilities=["vision"]) == "big_(A)"
    with pytest.raises(CapabilityError, match="No model found for role 'chat'"):
        select_by_role("chat", require_capabilities=["audio"])

    chosen = run_cli("select", "--role", "chat", on(reg))
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.json()["logical_name"] == "text_(C)"
    vision = run_cli("select", "--role", "chat", "--require-vision", on(reg))
    assert vision.json()["logical_name"] == "big_(A)"
    none = run_cli("select", "--role", "nobody", on(reg))
    assert none.returncode == 1 and "No model found for role 'nobody'" in none.stderr


# --- legacy locks and --set-expected ----------------------------------------------------


def legacy_subset(model: Path) -> str:
    names = ["config.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json",
             "mm_projector.bin"]  # fmt: skip
    digests = sorted(sha((model / n).read_bytes()) for n in names if (model / n).is_file())
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def legacy_locked(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "model"
    write(model / "config.json", b'{"hidden": 8}')
    write(model / "tokenizer.json", b'{"vocab": {}}')
    write(model / "weights.safetensors", b"w" * 5000)
    write(model / "sub" / "config.json", b"{}")  # not at the root: not in the subset
    reg = registry_with(
        tmp_path / "reg",
        [{"name": "m_(A)", "backend_config": {"model_path": str(model)}}],
        [{"name": "m_(A)", "version_lock": {"locked": True,
          "expected_aggregate_sha256": legacy_subset(model)}}],
    )  # fmt: skip
    return model, reg


def test_verify_accepts_a_matching_imageworks_subset_lock_with_a_warning(tmp_path):
    model, reg = legacy_locked(tmp_path)
    result = run_cli("verify", "m_(A)", on(reg))
    assert result.returncode == 0, result.stderr
    assert result.json()["status"] == "legacy-lock"
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1
    assert "weights are not covered" in warnings[0]
    assert "lock 'm_(A)' --set-expected" in warnings[0]
    assert discovered_entry(reg, "m_(A)")["version_lock"]["expected_aggregate_sha256"] == (
        legacy_subset(model)
    )

    # The weights are not covered: changing them still passes (with the warning) ...
    write(model / "weights.safetensors", b"x" * 5000)
    assert run_cli("verify", "m_(A)", on(reg)).returncode == 0
    # ... a changed subset file is a violation.
    write(model / "tokenizer.json", b'{"vocab": {"a": 1}}')
    result = run_cli("verify", "m_(A)", on(reg))
    assert result.returncode == 2, result.stderr
    assert "version lock violated" in result.stderr


def test_lock_set_expected_repins_a_legacy_lock_over_every_file(tmp_path):
    model, reg = legacy_locked(tmp_path)
    assert run_cli("verify", "m_(A)", on(reg)).returncode == 0
    result = run_cli("lock", "m_(A)", "--set-expected", on(reg))
    assert result.returncode == 0, result.stderr
    pinned = result.json()
    assert pinned["files_read"] == 0 and pinned["cache_hits"] == 4  # through the stat cache
    assert pinned["expected_aggregate_sha256"] != legacy_subset(model)
    verified = run_cli("verify", "m_(A)", on(reg))
    assert verified.returncode == 0 and verified.json()["status"] == "ok"
    assert verified.stderr == ""
    write(model / "weights.safetensors", b"x" * 5000)
    assert run_cli("verify", "m_(A)", on(reg)).returncode == 2  # now the weights count


def test_lock_set_expected_pins_the_files_as_they_are_now(tmp_path):
    model = tmp_path / "model"
    write(model / "config.json", b"{}")
    write(model / "weights.bin", b"old")
    reg = registry_with(
        tmp_path / "reg", [{"name": "m_(A)", "backend_config": {"model_path": str(model)}}]
    )
    assert run_cli("verify", "m_(A)", on(reg)).returncode == 0  # stores the old aggregate
    write(model / "weights.bin", b"new")
    result = run_cli("lock", "m_(A)", "--set-expected", on(reg))
    assert result.returncode == 0, result.stderr
    assert result.json()["files_read"] == 1  # only the changed file is read again
    assert run_cli("verify", "m_(A)", on(reg)).returncode == 0


def test_lock_set_expected_refuses_when_the_files_are_missing(tmp_path):
    model = tmp_path / "model"
    write(model / "weights.bin", b"w")
    reg = registry_with(
        tmp_path / "reg",
        [{"name": "m_(A)", "backend_config": {"model_path": str(model)}}],
        [{"name": "m_(A)", "artifacts": {"aggregate_sha256": "ab" * 32}}],
    )
    (model / "weights.bin").unlink()
    before = {p.name: p.read_bytes() for p in reg.iterdir() if p.is_file()}
    result = run_cli("lock", "m_(A)", "--set-expected", on(reg))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "m_(A)" in result.stderr
    after = {p.name: p.read_bytes() for p in reg.iterdir() if p.is_file() and p.name in before}
    assert after == before  # nothing pinned


# --- legacy single-file registries and migrate ------------------------------------------


def legacy_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "legacy"
    write(folder / SNAPSHOT, (REAL_REGISTRY / SNAPSHOT).read_bytes())
    return folder


def test_a_folder_with_only_the_snapshot_names_the_migrate_command(tmp_path):
    folder = legacy_folder(tmp_path)
    result = run_cli("list", on(folder))
    assert result.returncode == 1
    assert "imageworks-loader migrate" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_migrate_splits_static_and_dynamic_fields_keeping_key_order(tmp_path):
    folder = legacy_folder(tmp_path)
    legacy = read_json(folder / SNAPSHOT)
    dynamic = {"artifacts", "version_lock", "performance", "probes", "downloaded_at",
               "last_accessed"}  # fmt: skip

    def is_dynamic(key: str) -> bool:
        return key in dynamic or key.startswith("download_")

    dry = run_cli("migrate", "--dry-run", on(folder))
    assert dry.returncode == 0, dry.stderr
    written = sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))
    assert written == [SNAPSHOT]  # nothing written
    shown = dry.json()
    assert shown["action"] == "split" and shown["dry_run"] is True

    result = run_cli("migrate", on(folder))
    assert result.returncode == 0, result.stderr
    curated, discovered = read_json(folder / CURATED), read_json(folder / DISCOVERED)
    assert curated == shown["curated"] and discovered == shown["discovered"]
    for entry, static in zip(legacy, curated, strict=True):
        assert list(static) == [k for k in entry if not is_dynamic(k)]
    for tooling in discovered:
        entry = next(e for e in legacy if e["name"] == tooling["name"])
        assert list(tooling) == ["name", *(k for k in entry if is_dynamic(k))]

    # The layers compose to what the legacy file held.
    layered = Registry(load_config([on(folder)])).load(full=True)
    single = load_registry(folder / SNAPSHOT)
    assert {n: e.model_dump() for n, e in layered.items()} == {
        n: e.model_dump() for n, e in single.items()
    }

    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".json"}
    again = run_cli("migrate", on(folder))
    assert again.returncode == 0 and again.json()["action"] == "nothing"
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".json"} == files


def test_snapshot_only_entries_are_named_kept_and_adopted_by_migrate(demo_registry):
    assert run_cli("snapshot", on(demo_registry)).returncode == 0
    snapshot = read_json(demo_registry / SNAPSHOT)
    snapshot.append({"name": "hand-added_(Q8_0)", "backend": "ollama"})
    write_json(demo_registry / SNAPSHOT, snapshot)
    # A layer edit makes the snapshot stale: it is not rewritten over the hand-added entry.
    discovered = read_json(demo_registry / DISCOVERED)
    discovered[0]["performance"] = {"rolling_samples": 7}
    write_json(demo_registry / DISCOVERED, discovered)

    listed = run_cli("list", on(demo_registry))
    assert listed.returncode == 0, listed.stderr
    assert "'hand-added_(Q8_0)'" in listed.stderr and "migrate" in listed.stderr
    assert any(e["name"] == "hand-added_(Q8_0)" for e in read_json(demo_registry / SNAPSHOT))

    adopted = run_cli("migrate", on(demo_registry))
    assert adopted.returncode == 0, adopted.stderr
    assert adopted.json()["adopted"] == ["hand-added_(Q8_0)"]
    assert "'hand-added_(Q8_0)'" in adopted.stderr
    assert discovered_entry(demo_registry, "hand-added_(Q8_0)") == snapshot[-1]
    names = [r["name"] for r in run_cli("list", on(demo_registry)).json()]
    assert "hand-added_(Q8_0)" in names
    assert run_cli("migrate", on(demo_registry)).json()["action"] == "nothing"


# --- the CLI's first contact -------------------------------------------------------------


def test_main_leaves_garbage_collection_as_it_found_it(demo_registry, capsys):
    from loader.frontdoors.cli import main

    for enabled in (True, False):
        gc.enable() if enabled else gc.disable()
        try:
            assert main(["list", on(demo_registry)]) == 0
            assert gc.isenabled() is enabled
        finally:
            gc.enable()
    assert json.loads(capsys.readouterr().out.split("\n]\n")[0] + "\n]")


def test_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"imageworks-loader {version('imageworks-loader')}"


def test_a_misspelled_command_gets_did_you_mean():
    result = run_cli("lsit")
    assert result.returncode == 1
    assert "did you mean 'list'" in result.stderr  # (or 'set', as close)
    assert len(result.stderr.strip().splitlines()) == 1


def test_verify_with_a_name_and_all_is_refused(demo_registry):
    before = {p.name: p.read_bytes() for p in demo_registry.iterdir()}
    result = run_cli("verify", "qwen3_8b_(Q4_K_M)", "--all", on(demo_registry))
    assert result.returncode == 1
    assert "not both" in result.stderr
    assert {p.name: p.read_bytes() for p in demo_registry.iterdir()} == before


def test_each_command_help_shows_examples_and_the_shared_text_once():
    from loader.frontdoors.cli import EXAMPLES, build_parser
    from loader.operations import OPERATIONS

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(OPERATIONS) <= set(commands)
    for name, sub in commands.items():
        text = sub.format_help()
        assert 1 <= len(EXAMPLES[name]) <= 2
        examples = text.split("Examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert [line.strip() for line in examples] == EXAMPLES[name], name
        assert text.count("Hydra flags") == 1, name
        assert text.count("KEY=VALUE") == 1, name
        assert text.count("NAME.FIELD=VALUE") == 2, name  # the usage line and the option
        assert "Overrides (after" not in text, name
