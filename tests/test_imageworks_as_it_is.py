"""ImageWorks registries and locks as ImageWorks writes them (issue 17, items 1-2).

The entries are shaped like the real registry's (``tests/data/imageworks-registry``):
the Florence-2 entry, with the fields ImageWorks' own tools write.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
from conftest import CURATED, DISCOVERED, REAL_REGISTRY, read_json, run_cli, write_json

from loader.integrity.version_locks import legacy_subset_sha256

FLORENCE = "florence-2-large_(FP16)"


def _real_entry(name: str) -> tuple[dict, dict]:
    curated = next(e for e in read_json(REAL_REGISTRY / CURATED) if e["name"] == name)
    discovered = next(e for e in read_json(REAL_REGISTRY / DISCOVERED) if e["name"] == name)
    return copy.deepcopy(curated), copy.deepcopy(discovered)


def _registry(folder: Path, curated: list[dict], discovered: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / CURATED, curated)
    write_json(folder / DISCOVERED, discovered)
    return folder


# --- item 1: port 0 ----------------------------------------------------------------


def test_port_zero_from_discover_local_hf_means_the_backends_default_port(tmp_path):
    """ImageWorks' discover-local-hf writes ``"port": 0`` for entries it did not
    serve; its loader reads 0 as "no port". So do we, with one warning line."""
    curated, discovered = _real_entry(FLORENCE)
    curated["backend_config"]["port"] = 0
    folder = _registry(tmp_path / "reg", [curated], [discovered])
    env = {"IMAGEWORKS_REGISTRY_DIR": str(folder)}

    listed = run_cli("list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [row["name"] for row in listed.json()] == [FLORENCE]
    warnings = [line for line in listed.stderr.splitlines() if "port" in line]
    assert len(warnings) == 1, listed.stderr
    assert "backend_config.port" in warnings[0] and "0" in warnings[0]
    assert FLORENCE in warnings[0] and CURATED in warnings[0]

    selected = run_cli("select", FLORENCE, env=env)
    assert selected.returncode == 0, selected.stderr
    assert selected.json()["endpoint"] == "http://localhost:24001/v1"  # vllm's default
    # The layer keeps ImageWorks' 0: the registry is read, not rewritten.
    assert read_json(folder / CURATED)[0]["backend_config"]["port"] == 0


@pytest.mark.parametrize("port", [-1, 65536, 8000.5, True, False, "abc"])
def test_ports_that_are_not_ports_are_still_refused(tmp_path, port):
    curated, discovered = _real_entry(FLORENCE)
    curated["backend_config"]["port"] = port
    folder = _registry(tmp_path / "reg", [curated], [discovered])
    result = run_cli("list", env={"IMAGEWORKS_REGISTRY_DIR": str(folder)})
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "backend_config.port" in result.stderr and FLORENCE in result.stderr


# --- item 2: subset locks on download-tracked entries ------------------------------

MODEL_FILES = {
    "config.json": b'{"model_type": "florence2"}\n',
    "tokenizer.json": b'{"version": "1.0"}\n',
    "tokenizer_config.json": b'{"model_max_length": 1024}\n',
    "model.safetensors": b"weights " * 64,
    "README.md": b"# Florence-2\n",
}


def _tracked_entry_with_subset_lock(tmp_path: Path) -> tuple[Path, Path]:
    """A download-tracked entry (download_path + download_files, artifacts.files
    recorded) whose lock ImageWorks' ``lock --set-expected`` pinned with its
    subset formula."""
    model = tmp_path / "weights" / "microsoft" / "Florence-2-large"
    model.mkdir(parents=True)
    for rel, data in MODEL_FILES.items():
        (model / rel).write_bytes(data)
    files = [
        {"path": rel, "sha256": hashlib.sha256(data).hexdigest()}
        for rel, data in sorted(MODEL_FILES.items())
    ]
    curated, discovered = _real_entry(FLORENCE)
    curated["backend_config"]["model_path"] = str(model)
    discovered["backend_config"]["model_path"] = str(model)
    discovered["download_path"] = str(model)
    discovered["download_files"] = sorted(MODEL_FILES)
    discovered["artifacts"] = {"aggregate_sha256": "", "files": files}
    discovered["version_lock"] = {
        "locked": True,
        "expected_aggregate_sha256": legacy_subset_sha256(files),
        "last_verified": None,
    }
    folder = _registry(tmp_path / "reg", [curated], [discovered])
    return folder, model


def test_a_subset_lock_on_a_download_tracked_entry_holds_with_the_legacy_warning(tmp_path):
    folder, _ = _tracked_entry_with_subset_lock(tmp_path)
    result = run_cli("verify", FLORENCE, env={"IMAGEWORKS_REGISTRY_DIR": str(folder)})
    assert result.returncode == 0, result.stderr
    assert result.json()["status"] == "legacy-lock"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "ImageWorks subset lock" in lines[0] and "--set-expected" in lines[0]


def test_a_real_change_under_a_subset_lock_on_a_tracked_entry_still_violates(tmp_path):
    folder, model = _tracked_entry_with_subset_lock(tmp_path)
    (model / "tokenizer.json").write_bytes(b'{"version": "2.0"}\n')
    before = read_json(folder / DISCOVERED)
    result = run_cli("verify", FLORENCE, env={"IMAGEWORKS_REGISTRY_DIR": str(folder)})
    assert result.returncode == 2, result.stderr
    assert "version lock violated" in result.stderr and "tokenizer.json" in result.stderr
    # The violation is recorded for this host (issue 19); nothing else changes.
    after = read_json(folder / DISCOVERED)
    [verdict] = [h["verify"] for h in after[0].pop("hosts").values()]
    assert verdict["status"] == "violated"
    assert after == before


def test_the_real_registrys_florence_lock_shape_is_download_tracked():
    """The premise: the real registry's hashed entries carry download_files."""
    entry = next(e for e in read_json(REAL_REGISTRY / DISCOVERED) if e["name"] == FLORENCE)
    assert entry["download_files"] and entry["artifacts"]["files"]
    assert json.dumps(entry["version_lock"])  # a lock record ImageWorks wrote


def test_a_subset_lock_counts_root_subset_files_that_the_download_list_omits(tmp_path):
    """ImageWorks hashes the subset files present at the folder's root,
    whether or not ``download_files`` lists them."""
    folder, model = _tracked_entry_with_subset_lock(tmp_path)
    discovered = read_json(folder / DISCOVERED)
    discovered[0]["download_files"] = ["model.safetensors", "tokenizer.json"]
    write_json(folder / DISCOVERED, discovered)  # config.json is at the root, unlisted
    result = run_cli("verify", FLORENCE, env={"IMAGEWORKS_REGISTRY_DIR": str(folder)})
    assert result.returncode == 0, result.stderr
    assert result.json()["status"] == "legacy-lock"
    assert result.json()["files"] == 2  # the listed files only are the model's files
