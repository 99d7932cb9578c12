"""The Python API: cached loads, reload on change, lossless and minimal saves."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys

import pytest
from conftest import CURATED, DISCOVERED, SNAPSHOT, folder_digest, read_json, write_json

from loader.config import load_config
from loader.errors import RegistryWriteError, UnknownModelError
from loader.registry import core as api
from loader.registry.core import Registry, use_registry
from loader.registry.schema import RegistryEntry


@pytest.fixture
def use_real(real_registry, monkeypatch):
    monkeypatch.setenv("IMAGEWORKS_REGISTRY_DIR", str(real_registry))
    use_registry(None)
    return real_registry


def bump_mtime(path):
    # Some filesystems keep mtimes coarse; make a rewrite visibly newer.
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_load_registry_is_cached_and_reloads_when_a_layer_changes(use_real):
    first = api.load_registry()
    assert api.load_registry() is first  # no change on disk: the same mapping
    name = "qwen3_8b_(Q4_K_M)"
    assert first[name].display_name == "qwen3 8b (Q4 K M)"

    curated = read_json(use_real / CURATED)
    next(e for e in curated if e["name"] == name)["display_name"] = "Edited by hand"
    write_json(use_real / CURATED, curated)
    bump_mtime(use_real / CURATED)

    assert api.get_entry(name).display_name == "Edited by hand"
    assert api.load_registry(force=True)[name].display_name == "Edited by hand"


def test_get_entry_raises_key_error_naming_the_model(use_real):
    with pytest.raises(KeyError) as caught:
        api.get_entry("qwen3_8b_(Q4_K_M")
    assert isinstance(caught.value, UnknownModelError)
    message = str(caught.value)
    assert "qwen3_8b_(Q4_K_M" in message and "did you mean" in message


def test_list_models_is_sorted_by_name(use_real):
    names = [entry.name for entry in api.list_models()]
    assert names == sorted(names) and len(names) == 16


def test_load_then_save_without_change_leaves_every_file_byte_identical(use_real):
    api.load_registry()
    before = folder_digest(use_real)
    stamps = {p.name: p.stat().st_mtime_ns for p in use_real.glob("*.json")}
    assert api.save_registry() is False
    assert folder_digest(use_real) == before
    assert {p.name: p.stat().st_mtime_ns for p in use_real.glob("*.json")} == stamps


def test_one_field_change_is_a_one_line_diff_and_curated_is_never_written(use_real):
    curated_before = (use_real / CURATED).read_bytes()
    discovered_before = (use_real / DISCOVERED).read_text(encoding="utf-8")
    entry = api.get_entry("florence-2-large_(FP16)")
    entry.version_lock.locked = True
    assert api.save_registry() is True

    discovered_after = (use_real / DISCOVERED).read_text(encoding="utf-8")
    changed = [
        line
        for line in difflib.unified_diff(
            discovered_before.splitlines(), discovered_after.splitlines(), lineterm="", n=0
        )
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ['-      "locked": false,', '+      "locked": true,']
    assert (use_real / CURATED).read_bytes() == curated_before
    snapshot = {e["name"]: e for e in read_json(use_real / SNAPSHOT)}
    assert snapshot["florence-2-large_(FP16)"]["version_lock"]["locked"] is True


def test_a_static_change_is_saved_to_discovered_and_warns_that_curated_masks_it(use_real, caplog):
    entry = api.get_entry("qwen3_8b_(Q4_K_M)")
    entry.display_name = "Renamed"
    api.save_registry()
    discovered = {e["name"]: e for e in read_json(use_real / DISCOVERED)}
    assert discovered["qwen3_8b_(Q4_K_M)"]["display_name"] == "Renamed"
    # a warning record (loader.logs); the CLI shows it as one stderr line
    assert "masked" in caplog.text
    # curated still wins for a static field, exactly as documented
    assert api.load_registry(force=True)["qwen3_8b_(Q4_K_M)"].display_name != "Renamed"


def test_unknown_keys_and_non_ascii_text_survive_a_save(tmp_path):
    folder = tmp_path / "reg"
    folder.mkdir()
    curated = [
        {"name": "m_(A)", "display_name": "Modèle à tester", "x_custom": {"keep": [1, 2]}},
    ]
    discovered = [
        {"name": "m_(A)", "vendor_field": "kept", "version_lock": {"locked": False}},
        {"name": "n.1_(B)", "backend": "ollama", "whatever": None},
    ]
    (folder / CURATED).write_text(
        __import__("json").dumps(curated, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    write_json(folder / DISCOVERED, discovered)
    registry = Registry(load_config([f"registry.dir={folder}"]))
    entries = registry.load()
    assert entries["m_(A)"].model_extra == {"x_custom": {"keep": [1, 2]}, "vendor_field": "kept"}
    before = folder_digest(folder)
    assert registry.save() is False
    assert folder_digest(folder) == before

    entries["n.1_(B)"].version_lock.locked = True
    registry.save()
    saved = {e["name"]: e for e in read_json(folder / DISCOVERED)}
    assert saved["n.1_(B)"]["whatever"] is None
    assert saved["m_(A)"]["vendor_field"] == "kept"
    assert saved["n.1_(B)"]["version_lock"] == {"locked": True}
    assert "Modèle à tester" in (folder / SNAPSHOT).read_text(encoding="utf-8")
    assert (folder / CURATED).read_text(encoding="utf-8").count("Modèle à tester") == 1


def test_update_entries_adds_to_discovered_and_remove_refuses_curated_entries(use_real):
    api.update_entries([RegistryEntry(name="new_(X)", backend="lmdeploy", roles=["caption"])])
    saved = {e["name"]: e for e in read_json(use_real / DISCOVERED)}
    assert saved["new_(X)"]["backend"] == "lmdeploy"
    assert saved["new_(X)"]["roles"] == ["caption"]
    assert api.get_entry("new_(X)").roles == ["caption"]

    api.remove_entry("new_(X)")
    assert "new_(X)" not in {e["name"] for e in read_json(use_real / DISCOVERED)}
    with pytest.raises(RegistryWriteError, match="curated entries are removed by editing"):
        api.remove_entry("qwen3_8b_(Q4_K_M)")


WRITER = """
import sys
from loader.config import load_config
from loader.registry import Registry
folder, name = sys.argv[1], sys.argv[2]
registry = Registry(load_config([f"registry.dir={folder}"]))
entry = registry.get(name)
print("ready", flush=True)
sys.stdin.readline()  # the barrier: every writer has loaded; all save at once
entry.version_lock.locked = True
entry.performance.rolling_samples = 7
registry.save()
"""


def test_concurrent_writers_of_different_entries_lose_nothing(real_registry, isolated_cache):
    names = [e["name"] for e in read_json(real_registry / DISCOVERED)]
    env = dict(os.environ, IMAGEWORKS_LOADER_CACHE=str(isolated_cache))
    # Compose the writers' config once here: 16 Hydra compositions at once
    # would cost seconds and prove nothing about concurrent saves.
    load_config([f"registry.dir={real_registry}"])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(real_registry), name],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    try:
        # Wait until every writer has loaded the registry, then release them all.
        assert [p.stdout.readline() for p in procs] == ["ready\n"] * len(names)
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        assert [p.wait(timeout=120) for p in procs] == [0] * len(names)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdin.close()
            p.stdout.close()
    saved = read_json(real_registry / DISCOVERED)
    assert [e["name"] for e in saved] == names
    assert all(e["version_lock"]["locked"] for e in saved)
    assert all(e["performance"]["rolling_samples"] == 7 for e in saved)
    snapshot = read_json(real_registry / SNAPSHOT)
    assert all(e["version_lock"]["locked"] for e in snapshot)


def test_a_long_running_process_sees_another_process_lock_a_model(use_real, cli):
    assert api.get_entry("gpt-oss-20b_(MXFP4)").version_lock.locked is False
    result = cli("lock", "gpt-oss-20b_(MXFP4)", f"registry.dir={use_real}")
    assert result.returncode == 0, result.stderr
    assert api.get_entry("gpt-oss-20b_(MXFP4)").version_lock.locked is True


def test_snapshot_stands_in_for_layers_only_while_every_file_is_unchanged(real_registry):
    config = load_config([f"registry.dir={real_registry}"])
    full = Registry(config).load(full=True)
    fast_registry = Registry(config)
    fast = fast_registry.load()
    assert fast_registry._sources is None  # served from the verified snapshot
    assert {n: e.model_dump() for n, e in fast.items()} == {
        n: e.model_dump() for n, e in full.items()
    }

    # a hand edit of the snapshot is not trusted: the layers are composed again
    # and the snapshot is regenerated
    expected = (real_registry / SNAPSHOT).read_text(encoding="utf-8")
    edited = read_json(real_registry / SNAPSHOT)
    edited[0]["display_name"] = "tampered"
    write_json(real_registry / SNAPSHOT, edited)
    again = Registry(config)
    assert again.load()[edited[0]["name"]].display_name != "tampered"
    assert again._sources is not None
    assert (real_registry / SNAPSHOT).read_text(encoding="utf-8") == expected


def test_entry_overrides_apply_to_this_process_only(real_registry):
    name = "qwen2.5-vl-7b-instruct_(AWQ)"
    before = folder_digest(real_registry)
    registry = Registry(
        load_config([f"registry.dir={real_registry}"]),
        entry_overrides=[f"{name}.backend_config.port=9100", f'{name}.roles=["x"]'],
    )
    entry = registry.get(name)
    assert entry.backend_config.port == 9100 and entry.roles == ["x"]
    assert registry.save() is False
    assert folder_digest(real_registry) == before


def test_the_package_exports_its_public_api_lazily():
    import subprocess as sp

    import loader

    for name in loader.__all__:
        assert getattr(loader, name) is not None, name
    with pytest.raises(AttributeError):
        loader.no_such_name  # noqa: B018
    # importing the package alone does not pay for pydantic
    probe = "import sys, loader; print('pydantic' in sys.modules)"
    assert sp.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout == "False\n"


def test_a_save_keeps_the_entry_objects_a_caller_holds(real_registry):
    # The reload after a save reuses each held object whose content it
    # confirms (entry by entry, so a big registry is never held twice).
    from loader.config import load_config
    from loader.registry.core import Registry

    registry = Registry(load_config([f"registry.dir={real_registry}"]))
    entries = registry.load()
    changed_name, untouched_name = sorted(entries)[:2]
    changed, untouched = entries[changed_name], entries[untouched_name]
    changed.last_accessed = "2026-12-01T00:00:00+00:00"  # dynamic: discovered holds it
    assert registry.save() is True
    assert registry.entries[changed_name] is changed
    assert registry.entries[untouched_name] is untouched
    changed.last_accessed = "2026-12-02T00:00:00+00:00"  # still the registry's own object
    registry.save()
    fresh = Registry(load_config([f"registry.dir={real_registry}"])).load()
    assert fresh[changed_name].last_accessed == "2026-12-02T00:00:00+00:00"


@pytest.mark.parametrize("loaded_from", ["layers", "snapshot"])
def test_a_large_baseline_kept_compressed_still_saves_only_this_processs_changes(
    real_registry, monkeypatch, loaded_from
):
    """Layers over registry.state.PACK_ABOVE_BYTES are kept zlib-compressed as
    the save's baseline (issue 14's import memory); a save still writes this
    process's change and keeps another writer's."""
    from loader.registry import state

    monkeypatch.setattr(state, "PACK_ABOVE_BYTES", 0)  # every layer counts as large
    cfg = load_config([f"registry.dir={real_registry}"])
    Registry(cfg).ensure_loaded()  # confirms the snapshot, which may then stand in
    ours = Registry(cfg)
    entries = ours.load(full=True) if loaded_from == "layers" else ours.ensure_loaded()
    baseline = ours.state.baseline
    assert baseline[0] == loaded_from
    assert isinstance(baseline[-1], state.Packed)
    first, second = sorted(read_json(real_registry / DISCOVERED), key=lambda e: e["name"])[:2]

    other = Registry(load_config([f"registry.dir={real_registry}"]))
    other.get(second["name"]).license = "written by another process"
    assert other.save() is True
    entries[first["name"]].license = "written by this process"
    assert ours.save() is True

    stored = {e["name"]: e for e in read_json(real_registry / DISCOVERED)}
    assert stored[first["name"]]["license"] == "written by this process"
    assert stored[second["name"]]["license"] == "written by another process"
