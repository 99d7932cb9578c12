"""One test per fault found by the reliability pass (issue 11); each failed
before its fix."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import CURATED, DISCOVERED, SNAPSHOT, read_json
from hardening_support import (
    LOCK_NAME,
    assert_one_line_error,
    dead_pid,
    entry,
    lock_held_elsewhere,
    make_registry,
    run_bounded,
    shared_config_cache,  # noqa: F401 (autouse fixture)
    unchanged,
)

from loader.errors import ArtifactError
from loader.integrity import hashing

NAME = "alpha_(Q4)"


@pytest.fixture
def reg(tmp_path) -> Path:
    return make_registry(
        tmp_path / "reg", curated=[entry(NAME)], discovered=[{"name": NAME, "family": "a"}]
    )


# --- 1. temp files left by dead writers --------------------------------------


def test_the_next_write_removes_a_dead_writers_temp_file_and_keeps_a_live_ones(reg):
    from loader.registry.layers import host_tag

    dead = reg / f".{DISCOVERED}.{host_tag()}.{dead_pid()}.140000.tmp"
    # this test process is alive; one written before host names, with a dead pid,
    # goes only once it is an hour old (its host is unknown)
    live = reg / f".{DISCOVERED}.{host_tag()}.{os.getpid()}.140000.tmp"
    unnamed = reg / f".{DISCOVERED}.{dead_pid()}.140001.tmp"
    unnamed_old = reg / f".{DISCOVERED}.{dead_pid()}.140002.tmp"
    other = reg / f".unrelated.{dead_pid()}.1.tmp"
    for path in (dead, live, other, unnamed, unnamed_old):
        path.write_bytes(b"[half")
    os.utime(unnamed_old, (time.time() - 7200, time.time() - 7200))
    result = run_bounded("lock", NAME, f"registry.dir={reg}")
    assert result.returncode == 0, result.stderr
    assert not dead.exists() and not unnamed_old.exists()
    assert live.exists() and other.exists() and unnamed.exists()


# --- 2. tracebacks instead of one line -----------------------------------------


def _nested(kind: str, depth: int) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


@pytest.mark.parametrize("kind,depth", [("object", 5000), ("list", 100_000), ("object", 300)])
def test_deeply_nested_values_are_one_line(reg, kind, depth):
    text = (reg / CURATED).read_text()
    (reg / CURATED).write_text(
        text.replace('"roles"', f'"deep": {_nested(kind, depth)}, "roles"', 1)
    )
    before = unchanged(reg)
    result = run_bounded("list", f"registry.dir={reg}")
    assert_one_line_error(result, CURATED, "nested", "deep")
    assert unchanged(reg) == before


def test_an_unterminated_interpolation_is_one_line(reg):
    layer = [entry(NAME, backend_config={"model_path": "${paths.models"})]
    make_registry(reg, curated=layer)
    before = unchanged(reg)
    result = run_bounded("list", f"registry.dir={reg}")
    assert_one_line_error(result, CURATED, NAME, "backend_config.model_path")
    assert unchanged(reg) == before


def test_a_set_with_a_5000_level_field_path_is_one_line(reg):
    path = ".".join(["a"] * 5000)
    result = run_bounded("list", "--set", f"{NAME}.{path}=1", f"registry.dir={reg}")
    assert_one_line_error(result, "field path")


def test_a_set_with_a_deeply_nested_value_is_one_line(reg):
    result = run_bounded(
        "list", "--set", f"{NAME}.x={'[' * 5000}{']' * 5000}", f"registry.dir={reg}"
    )
    assert_one_line_error(result, "nested")


def test_a_download_file_with_a_nul_byte_is_one_line(reg, tmp_path):
    models = tmp_path / "m"
    models.mkdir()
    (models / "w.bin").write_bytes(b"w")
    make_registry(
        reg,
        curated=[entry(NAME, download_path=str(models), download_files=["w.bin\u0000x"])],
    )
    before = unchanged(reg)
    result = run_bounded("verify", NAME, f"registry.dir={reg}")
    assert_one_line_error(result, NAME, "NUL")
    assert unchanged(reg) == before


# --- 3. a layer that is a FIFO or a device; a size cap --------------------------


def test_a_fifo_layer_is_refused_at_once(reg):
    (reg / DISCOVERED).unlink()
    os.mkfifo(reg / DISCOVERED)
    result = run_bounded("list", f"registry.dir={reg}", timeout=20)
    assert_one_line_error(result, DISCOVERED, "not a regular file")


def test_a_device_layer_is_refused_at_once(reg):
    (reg / DISCOVERED).unlink()
    (reg / DISCOVERED).symlink_to("/dev/zero")
    result = run_bounded("list", f"registry.dir={reg}", timeout=20)
    assert_one_line_error(result, DISCOVERED, "not a regular file")


def test_a_layer_over_the_size_cap_is_refused_naming_the_config_key(reg):
    before = unchanged(reg)
    result = run_bounded("list", f"registry.dir={reg}", "registry.max_layer_bytes=100")
    assert_one_line_error(result, CURATED, "registry.max_layer_bytes")
    assert unchanged(reg) == before
    assert run_bounded("list", f"registry.dir={reg}").returncode == 0  # default is generous


# --- 4. a symlinked discovered layer --------------------------------------------


def test_a_symlinked_discovered_layer_is_refused_not_replaced(reg, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (reg / DISCOVERED).rename(shared / DISCOVERED)
    (reg / DISCOVERED).symlink_to(shared / DISCOVERED)
    target_before = (shared / DISCOVERED).read_bytes()
    assert run_bounded("list", f"registry.dir={reg}").returncode == 0  # reading follows it
    result = run_bounded("lock", NAME, f"registry.dir={reg}")
    assert_one_line_error(result, DISCOVERED, "symlink")
    assert (reg / DISCOVERED).is_symlink()
    assert (shared / DISCOVERED).read_bytes() == target_before


# --- 5. NaN and Infinity ----------------------------------------------------------


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused_at_load(reg, token):
    text = json.dumps([entry(NAME, generation_defaults={"temperature": 0.5})], indent=2)
    (reg / CURATED).write_text(text.replace("0.5", token))
    before = unchanged(reg)
    result = run_bounded("list", f"registry.dir={reg}")
    assert_one_line_error(result, CURATED, repr(NAME), "generation_defaults.temperature", token)
    assert unchanged(reg) == before


def test_a_non_finite_string_in_a_number_field_is_refused(reg):
    make_registry(reg, curated=[entry(NAME, performance={"ttft_ms_avg": "NaN"})])
    result = run_bounded("list", f"registry.dir={reg}")
    assert_one_line_error(result, CURATED, "performance.ttft_ms_avg")


def test_a_non_finite_set_value_is_refused_and_never_written(reg):
    result = run_bounded(
        "list", "--set", f"{NAME}.generation_defaults.temperature=NaN", f"registry.dir={reg}"
    )
    assert_one_line_error(result, "NaN")
    assert "NaN" not in (reg / SNAPSHOT).read_text() if (reg / SNAPSHOT).exists() else True


# --- 6. ports --------------------------------------------------------------------


# 0 is ImageWorks' "no port" (issue 17): tests/test_imageworks_as_it_is.py
@pytest.mark.parametrize("port", [-1, 70000, True, 8080.5])
def test_a_port_outside_1_to_65535_or_not_an_integer_is_refused(reg, port):
    make_registry(reg, curated=[entry(NAME, backend_config={"port": port})])
    before = unchanged(reg)
    result = run_bounded("select", NAME, f"registry.dir={reg}")
    assert_one_line_error(result, CURATED, repr(NAME), "backend_config.port")
    assert unchanged(reg) == before


def test_ports_at_the_edges_are_accepted(reg):
    make_registry(
        reg,
        curated=[
            entry(NAME, backend_config={"port": 65535}),
            entry("b", backend_config={"port": "1"}),
        ],
    )
    assert (
        run_bounded("select", NAME, f"registry.dir={reg}").json()["endpoint"].endswith(":65535/v1")
    )
    assert run_bounded("select", "b", f"registry.dir={reg}").json()["endpoint"].endswith(":1/v1")


# --- 7. names are never interpolated -----------------------------------------------


def test_a_name_holding_an_interpolation_is_refused_at_load(reg):
    make_registry(reg, curated=[entry(NAME), entry("${paths.models}")])
    before = unchanged(reg)
    result = run_bounded("select", "${paths.models}", f"registry.dir={reg}")
    assert_one_line_error(result, CURATED, "index 1", "name", "${")
    assert unchanged(reg) == before


# --- 8, 9, 10. races against verify ------------------------------------------------


def _model(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "a.bin").write_bytes(os.urandom(300_000))
    (root / "sub" / "w.bin").write_bytes(b"inside")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "w.bin").write_bytes(b"secret")
    return root, outside


def _artifacts(root: Path):
    return hashing.resolve_artifact_set(
        name=NAME,
        model_path=str(root),
        download_path=None,
        download_files=None,
        ollama_models_dir=root,
    )


def _before_first_open(monkeypatch, action):
    """Run ``action`` once, just before hashing opens its first file: the
    moment between the checks and the read that a racing process can use."""
    real_open = os.open
    fired = []

    def opener(path, flags, *args, **kwargs):
        if not fired:
            fired.append(True)
            action()
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(hashing.os, "open", opener)


def test_verify_refuses_a_file_swapped_for_a_fifo_without_hanging(tmp_path, monkeypatch):
    root, _ = _model(tmp_path)
    aset = _artifacts(root)
    target = root / "sub" / "w.bin"

    def swap():
        target.unlink()
        os.mkfifo(target)

    _before_first_open(monkeypatch, swap)
    outcome: list = []

    def run():
        try:
            outcome.append(hashing.hash_files(aset, workers=1))
        except ArtifactError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # release the blocked open so the thread can end
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join(10)
        pytest.fail("verify blocked on a FIFO")
    assert isinstance(outcome[0], ArtifactError), outcome
    assert "sub/w.bin" in str(outcome[0]) and "not a regular file" in str(outcome[0])


def test_verify_never_reads_through_a_parent_folder_swapped_for_a_symlink(tmp_path, monkeypatch):
    root, outside = _model(tmp_path)
    aset = _artifacts(root)

    def swap():
        (root / "sub").rename(root / "sub.old")
        (root / "sub").symlink_to(outside)

    _before_first_open(monkeypatch, swap)
    with pytest.raises(ArtifactError, match="sub"):
        hashing.hash_files(aset, workers=1)


def _during_read(monkeypatch, action):
    """Run ``action`` once, after hashing has read the first chunk of a file."""
    real_add = hashing._Progress.add
    fired = []

    def add(self, nbytes=0, files=0):
        if nbytes and not fired:
            fired.append(True)
            action()
        return real_add(self, nbytes, files)

    monkeypatch.setattr(hashing._Progress, "add", add)


@pytest.mark.parametrize("change", ["append", "delete"])
def test_a_file_changed_while_hashed_fails_the_model(tmp_path, monkeypatch, change):
    root, _ = _model(tmp_path)
    big = root / "a.bin"

    def act():
        if change == "append":
            with open(big, "ab") as fh:
                fh.write(b"more")
        else:
            big.unlink()

    _during_read(monkeypatch, act)
    cache = hashing.HashCache(tmp_path / "cache.json")
    with pytest.raises(ArtifactError, match=r"a\.bin (changed|deleted) while"):
        hashing.hash_files(_artifacts(root), workers=1, chunk_bytes=65536, cache=cache)
    assert not any(key.endswith("a.bin") for key in cache._fresh)


def test_verify_records_nothing_for_a_model_whose_file_changed_while_hashed(tmp_path, monkeypatch):
    from loader.config import load_config
    from loader.integrity.version_locks import verify_model
    from loader.registry.core import Registry

    root, _ = _model(tmp_path)
    reg = make_registry(
        tmp_path / "reg", curated=[entry(NAME, backend_config={"model_path": str(root)})]
    )
    # One worker and small chunks: the change lands while a.bin is being read.
    overrides = [f"registry.dir={reg}", "hashing.workers=1", "hashing.chunk_bytes=65536"]
    registry = Registry(load_config(overrides))
    model = registry.get(NAME)
    _during_read(monkeypatch, lambda: (root / "a.bin").write_bytes(b"new"))
    with pytest.raises(ArtifactError, match="changed while"):
        verify_model(model, registry=registry, progress=False)
    assert model.artifacts.aggregate_sha256 == "" and model.version_lock.last_verified is None


# --- 11. reads never wait on a writer --------------------------------------------------


def test_list_and_select_do_not_wait_for_a_held_registry_lock(reg):
    assert not (reg / SNAPSHOT).exists()  # so a read would refresh it
    with lock_held_elsewhere(reg / LOCK_NAME):
        for args in (("list",), ("select", NAME)):
            started = time.monotonic()
            result = run_bounded(*args, f"registry.dir={reg}", timeout=50)
            assert result.returncode == 0, result.stderr
            assert time.monotonic() - started < 15
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and "snapshot not refreshed" in lines[0], lines
            assert "busy" in lines[0]
    assert not (reg / SNAPSHOT).exists()
    assert run_bounded("list", f"registry.dir={reg}").stderr == ""  # refreshed once free
    assert (reg / SNAPSHOT).exists()


def test_verify_does_not_wait_for_a_held_hash_cache_lock(reg, tmp_path):
    root, _ = _model(tmp_path)
    make_registry(reg, curated=[entry(NAME, backend_config={"model_path": str(root)})])
    assert run_bounded("list", f"registry.dir={reg}").returncode == 0
    cache_lock = reg / ".imageworks-hash-cache.json.lock"
    with lock_held_elsewhere(cache_lock):
        started = time.monotonic()
        result = run_bounded("verify", NAME, f"registry.dir={reg}", timeout=50)
        assert result.returncode == 0, result.stderr
        assert time.monotonic() - started < 15
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "hash cache" in lines[0] and "busy" in lines[0], lines
    assert result.json()["aggregate_sha256"]
    assert read_json(reg / DISCOVERED)[0]["artifacts"]["aggregate_sha256"]


# --- minor: config values that double at each level ------------------------------------


def test_config_overrides_that_double_at_each_level_are_refused_quickly(reg):
    levels = ["+b0=xxxxxxxxxxxxxxxx"] + [f"+b{i}=${{b{i - 1}}}${{b{i - 1}}}" for i in range(1, 21)]
    started = time.monotonic()
    result = run_bounded("list", f"registry.dir={reg}", *levels, timeout=60)
    assert time.monotonic() - started < 20
    assert_one_line_error(result, "config b", "interpolation expands too far")


def test_a_few_doublings_still_resolve(reg):
    levels = ["+b0=x"] + [f"+b{i}=${{b{i - 1}}}${{b{i - 1}}}" for i in range(1, 5)]
    result = run_bounded("list", f"registry.dir={reg}", *levels)
    assert result.returncode == 0, result.stderr


def test_a_non_finite_value_set_from_python_is_never_written(reg):
    from loader.config import load_config
    from loader.errors import RegistryWriteError
    from loader.registry.core import Registry

    registry = Registry(load_config([f"registry.dir={reg}"]))
    registry.get(NAME).generation_defaults["temperature"] = float("nan")
    before = unchanged(reg)
    with pytest.raises(RegistryWriteError, match="not JSON compliant"):
        registry.save()
    assert unchanged(reg) == before
