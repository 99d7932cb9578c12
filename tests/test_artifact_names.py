"""Control characters in artifact file names (issue 18 item 9).

A name holding a newline makes the aggregate ambiguous: its line can pass for
several lines. The case found: a locked model with p1/p2.safetensors had one
file deleted and the other renamed to a name holding a newline and the first
line of the aggregate, and verify still said ok. Such names are refused at
import, lock and verify; every other name hashes as before."""

from __future__ import annotations

import hashlib
import os

import pytest
from conftest import CURATED, DISCOVERED, read_json, run_cli, write_json

from loader.integrity.hashing import aggregate_sha256

NAME = "m_(A)"


def _registry(tmp_path, model, **extra) -> dict[str, str]:
    folder = tmp_path / "reg"
    folder.mkdir()
    write_json(
        folder / CURATED,
        [
            {
                "name": NAME,
                "backend": "vllm",
                "backend_config": {"model_path": str(model)},
                **extra,
            }
        ],
    )
    write_json(folder / DISCOVERED, [])
    return {"IMAGEWORKS_REGISTRY_DIR": str(folder)}


def _one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_the_found_bypass_no_longer_verifies_ok(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "p1.safetensors").write_bytes(b"first shard")
    (model / "p2.safetensors").write_bytes(b"second shard")
    env = _registry(tmp_path, model)
    locked = run_cli("lock", NAME, "--set-expected", env=env)
    assert locked.returncode == 0, locked.stderr
    expected = locked.json()["expected_aggregate_sha256"]

    # The aggregate's lines, sorted: keep the file whose line comes first and
    # give it a name that also holds the second line.
    lines = sorted(
        f"{hashlib.sha256((model / p).read_bytes()).hexdigest()}  {p}"
        for p in ("p1.safetensors", "p2.safetensors")
    )
    first_file = lines[0].split("  ", 1)[1]
    other_file = lines[1].split("  ", 1)[1]
    (model / other_file).unlink()
    forged = f"{first_file}\n{lines[1]}"
    os.rename(model / first_file, model / forged)
    # The formula alone cannot tell the forged folder from the locked one.
    forged_sha = hashlib.sha256((model / forged).read_bytes()).hexdigest()
    assert aggregate_sha256([{"path": forged, "sha256": forged_sha}]) == expected

    before = (tmp_path / "reg" / DISCOVERED).read_bytes()
    result = run_cli("verify", NAME, env=env)
    assert result.returncode == 2, result.stderr
    line = _one_line(result)
    assert NAME in line and "control character" in line and "\\n" in line
    assert (tmp_path / "reg" / DISCOVERED).read_bytes() == before


@pytest.mark.parametrize("bad", ["a\nb.bin", "nul\x01.bin", "tab\there.bin", "del\x7f.bin"])
def test_names_with_control_characters_are_refused_at_verify_and_lock(tmp_path, bad):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_bytes(b"{}")
    (model / bad).write_bytes(b"x")
    env = _registry(tmp_path, model)
    before = read_json(tmp_path / "reg" / DISCOVERED)
    for args in (("verify", NAME), ("lock", NAME, "--set-expected")):
        result = run_cli(*args, env=env)
        assert result.returncode == 1, (args, result.stderr)
        assert "control character" in _one_line(result)
    assert read_json(tmp_path / "reg" / DISCOVERED) == before


def test_a_listed_download_file_with_a_newline_is_refused(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "a\nb.bin").write_bytes(b"x")
    env = _registry(tmp_path, model, download_path=str(model), download_files=["a\nb.bin"])
    result = run_cli("verify", NAME, env=env)
    assert result.returncode == 1
    assert "control character" in _one_line(result)


def test_import_dir_refuses_a_folder_holding_such_a_name(tmp_path):
    folder = tmp_path / "reg"
    folder.mkdir()
    write_json(folder / CURATED, [])
    write_json(folder / DISCOVERED, [])
    model = tmp_path / "weights" / "Bad-Model"
    model.mkdir(parents=True)
    (model / "config.json").write_bytes(b"{}")
    (model / "model\n.safetensors").write_bytes(b"x")
    before = (folder / DISCOVERED).read_bytes()
    result = run_cli(
        "import-dir", str(model), "--hash", env={"IMAGEWORKS_REGISTRY_DIR": str(folder)}
    )
    assert result.returncode == 1, result.stderr
    assert "control character" in _one_line(result)
    assert (folder / DISCOVERED).read_bytes() == before


def test_other_names_keep_the_aggregate_formula(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    names = ["a b.bin", "ünïcødé.safetensors", "sub/x  y.json", "€uro.txt"]
    for rel in names:
        (model / rel).parent.mkdir(parents=True, exist_ok=True)
        (model / rel).write_bytes(rel.encode())
    env = _registry(tmp_path, model)
    result = run_cli("verify", NAME, env=env)
    assert result.returncode == 0, result.stderr
    files = [{"path": rel, "sha256": hashlib.sha256(rel.encode()).hexdigest()} for rel in names]
    lines = sorted(f"{f['sha256']}  {f['path']}" for f in files)
    formula = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    assert result.json()["aggregate_sha256"] == formula
