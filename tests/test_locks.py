"""verify / lock / unlock end to end: real model folders, real registries, the real CLI.

The hashing engine has its own tests (test_hashing_engine.py); these check the
integration: what the CLI prints and exits with, what lands in which layer
file, the Python API, Ollama folders, the stat cache, concurrent writers and
Hydra sweeps.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import (
    CLI,
    CURATED,
    DISCOVERED,
    SNAPSHOT,
    json_stream,
    read_json,
    sha,
    write,
    write_json,
)

REPO = Path(__file__).resolve().parents[1]


# --- helpers ------------------------------------------------------------------


def make_model(root: Path, seed: int = 0) -> Path:
    """A small model folder: two shards, nested folders, a file link inside the root."""
    rnd = random.Random(seed)
    write(root / "config.json", json.dumps({"hidden_size": 8, "seed": seed}).encode())
    write(root / "model-00001-of-00002.safetensors", rnd.randbytes(150_000))
    write(root / "model-00002-of-00002.safetensors", rnd.randbytes(90_001))
    write(root / "tokenizer" / "vocab.json", b'{"a": 1, "b": 2}')
    write(root / "tokenizer" / "deep" / "merges.txt", f"a b\n{seed}\n".encode())
    (root / "config-link.json").symlink_to("config.json")
    return root


SHARD = "model-00002-of-00002.safetensors"


def file_list(root: Path, only: list[str] | None = None) -> list[dict[str, str]]:
    """Every file under ``root`` (or the listed ones) with its sha256, by hashlib."""
    if only is not None:
        paths = [root / rel for rel in only]
    else:
        paths = [p for p in root.rglob("*") if p.is_file()]
    rows = [{"path": p.relative_to(root).as_posix(), "sha256": sha(p.read_bytes())} for p in paths]
    return sorted(rows, key=lambda r: r["path"])


def aggregate(files: list[dict[str, str]]) -> str:
    lines = sorted(f"{f['sha256']}  {f['path']}" for f in files)
    return sha("\n".join(lines).encode("utf-8"))


def folder_aggregate(root: Path) -> str:
    return aggregate(file_list(root))


def tamper_one_byte(path: Path, offset: int | None = None) -> None:
    """Flip one byte in place: same size, different content."""
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    with open(path, "r+b") as fh:
        fh.seek(i)
        fh.write(bytes([data[i]]))


def vllm_entry(name: str, model_path: Path | str, **extra) -> dict:
    return {
        "name": name,
        "backend": "vllm",
        "backend_config": {"model_path": str(model_path)},
        **extra,
    }


def make_registry(folder: Path, curated: list[dict], discovered: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / CURATED, curated)
    write_json(folder / DISCOVERED, discovered or [])
    return folder


def disc(reg: Path, name: str) -> dict | None:
    """The entry's record in the discovered layer, if any."""
    return next((e for e in read_json(reg / DISCOVERED) if e["name"] == name), None)


def recorded_aggregate(reg: Path, name: str) -> str | None:
    entry = disc(reg, name) or {}
    return (entry.get("artifacts") or {}).get("aggregate_sha256")


def lock_state(reg: Path, name: str) -> dict:
    return (disc(reg, name) or {}).get("version_lock") or {}


def assert_recent_timestamp(text: str) -> None:
    when = datetime.fromisoformat(text)
    assert when.tzinfo is not None, text
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=5), text


def assert_clean_error(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert stderr.strip(), "an error must say something on stderr"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No Ollama folder of the host, no sweep records outside tmp_path."""
    return {"OLLAMA_MODELS": str(tmp_path / "ollama-models"), "TMPDIR": str(tmp_path)}


@pytest.fixture
def run(cli, env, tmp_path):
    """``imageworks-loader ARGS registry.dir=REG`` as a real process."""

    def _run(reg: Path, *args: str, extra_env: dict[str, str] | None = None):
        return cli(*args, f"registry.dir={reg}", cwd=tmp_path, env={**env, **(extra_env or {})})

    return _run


def popen(reg: Path, env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(CLI), *args, f"registry.dir={reg}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, **env},
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


# --- verify -------------------------------------------------------------------


def test_verify_prints_and_records_hashes_in_discovered_only(tmp_path, run):
    model = make_model(tmp_path / "model")
    reg = make_registry(tmp_path / "reg", [vllm_entry("m_(A)", model)])
    curated_before = (reg / CURATED).read_bytes()
    expected_files = file_list(model)
    assert any(f["path"] == "config-link.json" for f in expected_files)  # link inside: hashed
    expected = aggregate(expected_files)

    r = run(reg, "verify", "m_(A)")

    assert r.returncode == 0, r.stderr
    out = r.json()
    assert out["name"] == "m_(A)"
    assert out["aggregate_sha256"] == expected
    assert out["locked"] is False
    assert out["files"] == len(expected_files) == 6
    assert_recent_timestamp(out["last_verified"])

    record = disc(reg, "m_(A)")
    assert record is not None
    assert record["artifacts"]["aggregate_sha256"] == expected
    assert record["artifacts"]["files"] == expected_files
    assert record["version_lock"]["last_verified"] == out["last_verified"]
    assert (reg / CURATED).read_bytes() == curated_before


def test_verify_unknown_model_exits_1_and_writes_nothing(tmp_path, run):
    model = make_model(tmp_path / "model")
    reg = make_registry(tmp_path / "reg", [vllm_entry("m_(A)", model)])
    before = (reg / DISCOVERED).read_bytes()

    r = run(reg, "verify", "nope")

    assert r.returncode == 1
    assert_clean_error(r.stderr)
    assert "nope" in r.stderr
    assert (reg / DISCOVERED).read_bytes() == before


# --- lock / unlock ------------------------------------------------------------


def test_lock_set_expected_computes_the_aggregate_when_none_is_stored(tmp_path, run):
    model = make_model(tmp_path / "model")
    reg = make_registry(tmp_path / "reg", [vllm_entry("m_(A)", model)])
    curated_before = (reg / CURATED).read_bytes()
    assert recorded_aggregate(reg, "m_(A)") is None

    r = run(reg, "lock", "m_(A)", "--set-expected")

    assert r.returncode == 0, r.stderr
    out = r.json()
    expected = folder_aggregate(model)
    assert out["locked"] is True
    assert out["expected_aggregate_sha256"] == expected
    state = lock_state(reg, "m_(A)")
    assert state["locked"] is True
    assert state["expected_aggregate_sha256"] == expected
    assert recorded_aggregate(reg, "m_(A)") == expected
    assert (reg / CURATED).read_bytes() == curated_before


def test_lock_verify_tamper_unlock_cycle(tmp_path, run):
    model = make_model(tmp_path / "model")
    reg = make_registry(tmp_path / "reg", [vllm_entry("m_(A)", model)])
    curated_before = (reg / CURATED).read_bytes()
    good = folder_aggregate(model)

    assert run(reg, "lock", "m_(A)", "--set-expected").returncode == 0
    r = run(reg, "verify", "m_(A)")
    assert r.returncode == 0, r.stderr
    assert r.json()["locked"] is True
    assert r.json()["aggregate_sha256"] == good
    good_record = disc(reg, "m_(A)")

    tamper_one_byte(model / SHARD)
    bad = folder_aggregate(model)
    assert bad != good

    r = run(reg, "verify", "m_(A)")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert_clean_error(r.stderr)
    assert good in r.stderr and bad in r.stderr
    assert SHARD in r.stderr
    assert "model-00001-of-00002.safetensors" not in r.stderr  # only the changed file
    # The expected hash and the last good record survive the failed verify;
    # the violation itself is recorded for this host (issue 19).
    after = disc(reg, "m_(A)")
    assert {k: v for k, v in after.items() if k != "hosts"} == {
        k: v for k, v in good_record.items() if k != "hosts"
    }
    [verdict] = [h["verify"] for h in after["hosts"].values()]
    assert verdict["status"] == "violated" and verdict["aggregate_sha256"] == bad
    assert lock_state(reg, "m_(A)")["expected_aggregate_sha256"] == good

    r = run(reg, "unlock", "m_(A)")
    assert r.returncode == 0, r.stderr
    assert r.json()["locked"] is False
    assert lock_state(reg, "m_(A)")["locked"] is False
    assert lock_state(reg, "m_(A)")["expected_aggregate_sha256"] == good  # kept

    r = run(reg, "verify", "m_(A)")
    assert r.returncode == 0, r.stderr
    assert r.json()["aggregate_sha256"] == bad
    assert r.json()["locked"] is False
    assert recorded_aggregate(reg, "m_(A)") == bad
    assert lock_state(reg, "m_(A)")["expected_aggregate_sha256"] == good

    # Re-locking without --set-expected keeps the old expected hash: violated again.
    assert run(reg, "lock", "m_(A)").returncode == 0
    r = run(reg, "verify", "m_(A)")
    assert r.returncode == 2
    assert good in r.stderr and bad in r.stderr
    assert (reg / CURATED).read_bytes() == curated_before


@pytest.mark.parametrize("how", ["cli-lock", "curated-lock"])
def test_locked_entry_without_expected_takes_the_fresh_aggregate(tmp_path, run, how):
    model = make_model(tmp_path / "model")
    extra = {"version_lock": {"locked": True}} if how == "curated-lock" else {}
    reg = make_registry(tmp_path / "reg", [vllm_entry("m_(A)", model, **extra)])
    if how == "cli-lock":
        r = run(reg, "lock", "m_(A)")
        assert r.returncode == 0, r.stderr
        assert r.json()["expected_aggregate_sha256"] in (None, "")
    expected = folder_aggregate(model)

    r = run(reg, "verify", "m_(A)")

    assert r.returncode == 0, r.stderr
    assert r.json()["locked"] is True
    assert r.json()["aggregate_sha256"] == expected
    assert lock_state(reg, "m_(A)")["expected_aggregate_sha256"] == expected
    tamper_one_byte(model / "tokenizer" / "vocab.json", 0)
    assert run(reg, "verify", "m_(A)").returncode == 2


# --- the Python API -------------------------------------------------------------


def test_python_api_imports_in_a_fresh_interpreter():
    code = (
        "from loader.hashing import verify_model, VersionLockViolation\n"
        "from loader.errors import VersionLockViolation as V, RegistryError\n"
        "assert VersionLockViolation is V and issubclass(V, RegistryError)\n"
        "assert V.exit_code == 2 and callable(verify_model)\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_python_api_verify_model_with_and_without_enforcing(tmp_path, monkeypatch):
    from loader.config import load_config
    from loader.hashing import VersionLockViolation, verify_model
    from loader.registry.core import Registry, use_registry

    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama-models"))
    model = make_model(tmp_path / "model")
    reg = make_registry(tmp_path / "reg", [vllm_entry("m_(A)", model)])
    curated_before = (reg / CURATED).read_bytes()
    registry = Registry(load_config([f"registry.dir={reg}"]))
    use_registry(registry)
    good = folder_aggregate(model)

    result = verify_model(registry.get("m_(A)"))  # the default registry is ours
    assert result.aggregate_sha256 == good
    assert registry.get("m_(A)").artifacts.aggregate_sha256 == good
    entry = registry.get("m_(A)")
    entry.version_lock.locked = True
    entry.version_lock.expected_aggregate_sha256 = good
    registry.save()
    assert recorded_aggregate(reg, "m_(A)") == good
    assert lock_state(reg, "m_(A)")["locked"] is True

    tamper_one_byte(model / SHARD)
    bad = folder_aggregate(model)

    entry = registry.get("m_(A)")
    with pytest.raises(VersionLockViolation) as exc:
        verify_model(entry, enforce_lock=True)
    message = str(exc.value)
    assert good in message and bad in message and SHARD in message
    assert entry.artifacts.aggregate_sha256 == good  # left as it was

    result = verify_model(entry, enforce_lock=False)  # no raise
    assert result.aggregate_sha256 == bad
    assert entry.artifacts.aggregate_sha256 == bad
    assert {f.path: f.sha256 for f in entry.artifacts.files}[SHARD] == sha(
        (model / SHARD).read_bytes()
    )
    assert entry.version_lock.expected_aggregate_sha256 == good  # not overwritten
    assert entry.version_lock.locked is True
    registry.save()

    assert recorded_aggregate(reg, "m_(A)") == bad
    assert lock_state(reg, "m_(A)")["expected_aggregate_sha256"] == good
    assert lock_state(reg, "m_(A)")["locked"] is True
    assert (reg / CURATED).read_bytes() == curated_before
    # A fresh registry reads back what was saved.
    again = Registry(load_config([f"registry.dir={reg}"])).get("m_(A)")
    assert again.artifacts.aggregate_sha256 == bad
    assert again.version_lock.expected_aggregate_sha256 == good


# --- verify --all -----------------------------------------------------------------


def test_verify_all_checks_every_entry_before_failing(tmp_path, run):
    models = {n: make_model(tmp_path / n, seed=i) for i, n in enumerate(["a_bad", "b_ok", "c_ok"])}
    reg = make_registry(tmp_path / "reg", [vllm_entry(n, p) for n, p in models.items()])
    for name in models:
        assert run(reg, "lock", name, "--set-expected").returncode == 0
    before = {n: lock_state(reg, n)["expected_aggregate_sha256"] for n in models}
    bad_before = disc(reg, "a_bad")
    tamper_one_byte(models["a_bad"] / SHARD)
    for name in ("b_ok", "c_ok"):  # add a file: their aggregates change, unlocked ones record it
        assert run(reg, "unlock", name).returncode == 0
        write(models[name] / "extra" / "new.txt", name.encode())

    r = run(reg, "verify", "--all")

    assert r.returncode == 2, (r.stdout, r.stderr)
    assert_clean_error(r.stderr)
    assert "a_bad" in r.stderr and SHARD in r.stderr
    results = {x["name"]: x for x in r.json()}
    assert set(results) == set(models)
    bad = results["a_bad"]
    assert bad["status"] == "violated" and bad["exit_code"] == 2
    assert bad["expected_aggregate_sha256"] == before["a_bad"]
    assert bad["aggregate_sha256"] == folder_aggregate(models["a_bad"])
    assert bad["changed_files"] == [SHARD]
    # The entries after the violated one were verified and recorded.
    for name in ("b_ok", "c_ok"):
        fresh = folder_aggregate(models[name])
        assert fresh != before[name]
        assert results[name]["aggregate_sha256"] == fresh
        assert recorded_aggregate(reg, name) == fresh
        assert lock_state(reg, name)["last_verified"] == results[name]["last_verified"]
    without_hosts = {k: v for k, v in disc(reg, "a_bad").items() if k != "hosts"}
    assert without_hosts == {k: v for k, v in bad_before.items() if k != "hosts"}
    assert lock_state(reg, "a_bad")["expected_aggregate_sha256"] == before["a_bad"]


def test_verify_all_with_nothing_wrong_exits_0(tmp_path, run):
    models = {n: make_model(tmp_path / n, seed=i) for i, n in enumerate(["x", "y_(Q4)"])}
    reg = make_registry(tmp_path / "reg", [vllm_entry(n, p) for n, p in models.items()])
    assert run(reg, "lock", "x", "--set-expected").returncode == 0

    r = run(reg, "verify", "--all")

    assert r.returncode == 0, r.stderr
    results = {x["name"]: x for x in r.json()}
    for name, path in models.items():
        assert results[name]["aggregate_sha256"] == folder_aggregate(path)
        assert recorded_aggregate(reg, name) == folder_aggregate(path)
    assert results["x"]["locked"] is True and results["y_(Q4)"]["locked"] is False


# --- missing files ----------------------------------------------------------------


@pytest.mark.parametrize("problem", ["missing-folder", "empty-folder", "missing-download"])
def test_entry_whose_files_are_missing_exits_1_and_records_nothing(tmp_path, run, problem):
    model = make_model(tmp_path / "model")
    if problem == "missing-folder":
        entry = vllm_entry("m_(A)", tmp_path / "no-such-folder")
        named = "no-such-folder"
    elif problem == "empty-folder":
        (tmp_path / "empty").mkdir()
        entry = vllm_entry("m_(A)", tmp_path / "empty")
        named = str(tmp_path / "empty")
    else:
        entry = vllm_entry(
            "m_(A)",
            model,
            download_path=str(model),
            download_files=["config.json", "model-00003-of-00002.safetensors"],
        )
        named = "model-00003-of-00002.safetensors"
    reg = make_registry(tmp_path / "reg", [entry])

    r = run(reg, "verify", "m_(A)")

    assert r.returncode == 1, (r.stdout, r.stderr)
    assert_clean_error(r.stderr)
    assert "m_(A)" in r.stderr and named in r.stderr
    assert disc(reg, "m_(A)") is None  # no aggregate recorded as if it were a result
    assert sha(b"") not in (reg / DISCOVERED).read_text()


def test_files_vanishing_after_a_good_verify_keep_the_good_record(tmp_path, run):
    model = make_model(tmp_path / "model")
    reg = make_registry(tmp_path / "reg", [vllm_entry("m_(A)", model)])
    assert run(reg, "verify", "m_(A)").returncode == 0
    good = disc(reg, "m_(A)")
    model.rename(tmp_path / "moved")

    r = run(reg, "verify", "m_(A)")

    assert r.returncode == 1
    assert_clean_error(r.stderr)
    assert str(model) in r.stderr
    assert disc(reg, "m_(A)") == good


def test_verify_all_with_a_missing_entry_exits_1_but_records_the_others(tmp_path, run):
    model = make_model(tmp_path / "model")
    reg = make_registry(
        tmp_path / "reg",
        [vllm_entry("a_missing", tmp_path / "gone"), vllm_entry("b_ok", model)],
    )

    r = run(reg, "verify", "--all")

    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "a_missing" in r.stderr and str(tmp_path / "gone") in r.stderr
    assert disc(reg, "a_missing") is None
    assert recorded_aggregate(reg, "b_ok") == folder_aggregate(model)


def test_verify_all_missing_and_violated_exits_2(tmp_path, run):
    model = make_model(tmp_path / "model")
    reg = make_registry(
        tmp_path / "reg",
        [vllm_entry("a_missing", tmp_path / "gone"), vllm_entry("b_locked", model)],
    )
    assert run(reg, "lock", "b_locked", "--set-expected").returncode == 0
    tamper_one_byte(model / SHARD)

    r = run(reg, "verify", "--all")

    assert r.returncode == 2
    assert "a_missing" in r.stderr and "b_locked" in r.stderr


# --- download files -----------------------------------------------------------------


def test_download_files_are_the_hashed_set(tmp_path, run):
    model = make_model(tmp_path / "model")
    listed = ["config.json", "tokenizer/vocab.json", "model-00001-of-00002.safetensors"]
    reg = make_registry(
        tmp_path / "reg",
        [vllm_entry("m_(A)", model, download_path=str(model), download_files=listed)],
    )

    r = run(reg, "verify", "m_(A)")

    assert r.returncode == 0, r.stderr
    expected_files = file_list(model, listed)
    assert r.json()["aggregate_sha256"] == aggregate(expected_files)
    assert disc(reg, "m_(A)")["artifacts"]["files"] == expected_files


# --- paths outside the root -----------------------------------------------------------


def cache_text(reg: Path) -> str:
    from loader.config import load_config

    name = str(load_config([f"registry.dir={reg}"]).get("hashing.cache_file"))
    path = reg / name
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("bad", ["../outside.bin", "tokenizer/../../outside.bin", "ABSOLUTE"])
def test_download_file_leaving_the_root_is_refused(tmp_path, run, bad):
    model = make_model(tmp_path / "model")
    outside = write(tmp_path / "outside.bin", b"secret weights outside the root")
    item = str(outside) if bad == "ABSOLUTE" else bad
    reg = make_registry(
        tmp_path / "reg",
        [
            vllm_entry(
                "m_(A)", model, download_path=str(model), download_files=["config.json", item]
            )
        ],
    )

    r = run(reg, "verify", "m_(A)")

    assert r.returncode == 1, (r.stdout, r.stderr)
    assert_clean_error(r.stderr)
    assert item in r.stderr
    assert disc(reg, "m_(A)") is None
    assert str(outside) not in cache_text(reg)
    assert sha(outside.read_bytes()) not in r.stdout + r.stderr + cache_text(reg)


@pytest.mark.parametrize("kind", ["file-link", "folder-link"])
def test_symlink_pointing_outside_the_model_is_refused(tmp_path, run, kind):
    model = make_model(tmp_path / "model")
    outside = write(tmp_path / "elsewhere" / "secret.bin", b"not part of the model")
    if kind == "file-link":
        link = model / "tokenizer" / "evil.bin"
        link.symlink_to(outside)
    else:
        link = model / "evil-dir"
        link.symlink_to(outside.parent, target_is_directory=True)
    reg = make_registry(tmp_path / "reg", [vllm_entry("m_(A)", model)])

    r = run(reg, "verify", "m_(A)")

    assert r.returncode == 1, (r.stdout, r.stderr)
    assert_clean_error(r.stderr)
    assert str(link) in r.stderr  # the message names the link
    assert disc(reg, "m_(A)") is None
    assert str(outside) not in cache_text(reg)
    assert sha(outside.read_bytes()) not in r.stdout + r.stderr + cache_text(reg)

    r = run(reg, "lock", "m_(A)", "--set-expected")
    assert r.returncode == 1
    assert lock_state(reg, "m_(A)").get("locked") is not True


# --- Ollama -----------------------------------------------------------------------------


def add_ollama_model(models: Path, manifest_parts: list[str], blobs: list[bytes]) -> list[str]:
    """Content-addressed blobs plus a real manifest listing them; returns the digests."""
    digests = []
    for data in blobs:
        h = sha(data)
        write(models / "blobs" / f"sha256-{h}", data)
        digests.append(h)
    cfg, *layers = digests
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": f"sha256:{cfg}",
            "size": len(blobs[0]),
        },
        "layers": [
            {
                "mediaType": "application/vnd.ollama.image.model",
                "digest": f"sha256:{h}",
                "size": len(data),
            }
            for h, data in zip(layers, blobs[1:], strict=True)
        ],
    }
    path = models / "manifests" / "registry.ollama.ai"
    for part in manifest_parts:
        path = path / part
    write(path, json.dumps(manifest).encode())
    return digests


def ollama_entry(name: str, ref: str) -> dict:
    return {
        "name": name,
        "backend": "ollama",
        "backend_config": {"port": 11434, "model_path": ref},
    }


@pytest.fixture
def ollama(tmp_path, env) -> dict[str, list[str]]:
    models = Path(env["OLLAMA_MODELS"])
    rnd = random.Random(7)
    return {
        "lib": add_ollama_model(
            models,
            ["library", "tiny", "1b"],
            [b'{"model_format":"gguf"}', rnd.randbytes(120_000), b"{{ .Prompt }}"],
        ),
        "ns": add_ollama_model(
            models,
            ["someone", "tiny-gguf", "q4_k_m"],
            [b'{"model_family":"llama"}', rnd.randbytes(80_000)],
        ),
    }


def ollama_files(digests: list[str]) -> list[dict[str, str]]:
    rows = [{"path": f"blobs/sha256-{h}", "sha256": h} for h in digests]
    return sorted(rows, key=lambda r: r["path"])


@pytest.mark.parametrize(
    ("key", "ref"), [("lib", "ollama:/tiny:1b"), ("ns", "ollama:/someone/tiny-gguf:q4_k_m")]
)
def test_ollama_entry_hashes_its_manifest_blobs(tmp_path, run, env, ollama, key, ref):
    reg = make_registry(tmp_path / "reg", [ollama_entry("o_(Q4)", ref)])

    r = run(reg, "verify", "o_(Q4)")

    assert r.returncode == 0, r.stderr
    digests = ollama[key]
    # Each blob's name is its true sha256, and only this model's blobs are hashed.
    for h in digests:
        assert sha((Path(env["OLLAMA_MODELS"]) / "blobs" / f"sha256-{h}").read_bytes()) == h
    files = ollama_files(digests)
    assert r.json()["aggregate_sha256"] == aggregate(files)
    assert r.json()["files"] == len(digests)
    record = disc(reg, "o_(Q4)")["artifacts"]
    assert record["files"] == files
    assert record["aggregate_sha256"] == aggregate(files)


def test_ollama_blob_not_matching_its_digest_exits_2_even_unlocked(tmp_path, run, env, ollama):
    reg = make_registry(tmp_path / "reg", [ollama_entry("o_(Q4)", "ollama:/tiny:1b")])
    assert run(reg, "verify", "o_(Q4)").returncode == 0
    good = disc(reg, "o_(Q4)")
    weights = ollama["lib"][1]
    blob = Path(env["OLLAMA_MODELS"]) / "blobs" / f"sha256-{weights}"
    tamper_one_byte(blob)

    r = run(reg, "verify", "o_(Q4)")

    assert r.returncode == 2, (r.stdout, r.stderr)
    assert_clean_error(r.stderr)
    assert weights in r.stderr and sha(blob.read_bytes()) in r.stderr
    assert lock_state(reg, "o_(Q4)").get("locked") is not True
    assert disc(reg, "o_(Q4)") == good  # the mismatching content was not recorded
    # The other model, sharing no blob, still verifies.
    reg2 = make_registry(
        tmp_path / "reg2", [ollama_entry("n_(Q4)", "ollama:/someone/tiny-gguf:q4_k_m")]
    )
    assert run(reg2, "verify", "n_(Q4)").returncode == 0


def test_ollama_missing_manifest_exits_1(tmp_path, run, ollama):
    reg = make_registry(tmp_path / "reg", [ollama_entry("o_(Q4)", "ollama:/tiny:70b")])

    r = run(reg, "verify", "o_(Q4)")

    assert r.returncode == 1
    assert_clean_error(r.stderr)
    assert "o_(Q4)" in r.stderr and "tiny:70b" in r.stderr
    assert disc(reg, "o_(Q4)") is None


# --- the stat cache -------------------------------------------------------------------------


def test_second_verify_reads_nothing_and_rehash_reads_everything(tmp_path, run):
    from loader.config import load_config

    model = make_model(tmp_path / "model")
    reg = make_registry(tmp_path / "reg", [vllm_entry("m_(A)", model)])
    n_real = len({os.path.realpath(p) for p in model.rglob("*") if p.is_file()})  # link = 1 read
    expected = folder_aggregate(model)

    first = run(reg, "verify", "m_(A)")
    assert first.returncode == 0, first.stderr
    assert first.json()["files_read"] == n_real
    assert first.json()["cache_hits"] == 0

    second = run(reg, "verify", "m_(A)")
    assert second.returncode == 0, second.stderr
    assert second.json()["files_read"] == 0
    assert second.json()["cache_hits"] == 6
    assert second.json()["aggregate_sha256"] == expected

    rehash = run(reg, "verify", "m_(A)", "--rehash")
    assert rehash.returncode == 0, rehash.stderr
    assert rehash.json()["files_read"] == n_real
    assert rehash.json()["cache_hits"] == 0
    assert rehash.json()["aggregate_sha256"] == expected

    tamper_one_byte(model / "tokenizer" / "deep" / "merges.txt", 0)
    changed = run(reg, "verify", "m_(A)")
    assert changed.json()["files_read"] == 1
    assert changed.json()["aggregate_sha256"] == folder_aggregate(model)

    # The cache lives beside the registry, under the configured name, and
    # nothing of it leaks into the layer files.
    cache_name = str(load_config([f"registry.dir={reg}"]).get("hashing.cache_file"))
    assert cache_name
    cache = reg / cache_name
    assert cache.is_file()
    assert str(model / SHARD) in cache.read_text()
    for layer in (CURATED, DISCOVERED, SNAPSHOT):
        text = (reg / layer).read_text() if (reg / layer).exists() else ""
        assert "mtime_ns" not in text and "ctime_ns" not in text and cache_name not in text
    assert not list(model.rglob("*hash-cache*"))


# --- concurrent writers ---------------------------------------------------------------------


def test_two_processes_verifying_and_locking_different_entries_lose_nothing(tmp_path, env):
    names = [f"m{i}_(A)" for i in range(6)]
    models = {n: make_model(tmp_path / f"model{i}", seed=i) for i, n in enumerate(names)}
    reg = make_registry(tmp_path / "reg", [vllm_entry(n, p) for n, p in models.items()])
    curated_before = (reg / CURATED).read_bytes()

    for verify_name, lock_name in zip(names[0::2], names[1::2], strict=True):
        a = popen(reg, env, tmp_path, "verify", verify_name)
        b = popen(reg, env, tmp_path, "lock", lock_name, "--set-expected")
        for proc in (a, b):
            code, _out, err = finish(proc)
            assert code == 0, err

    for verify_name, lock_name in zip(names[0::2], names[1::2], strict=True):
        assert recorded_aggregate(reg, verify_name) == folder_aggregate(models[verify_name])
        assert_recent_timestamp(lock_state(reg, verify_name)["last_verified"])
        state = lock_state(reg, lock_name)
        assert state["locked"] is True
        assert state["expected_aggregate_sha256"] == folder_aggregate(models[lock_name])
    assert (reg / CURATED).read_bytes() == curated_before


def test_eight_concurrent_locks_all_persist(tmp_path, env, run):
    names = [f"e{i}_(Q{i})" for i in range(8)]
    models = {n: make_model(tmp_path / f"model{i}", seed=10 + i) for i, n in enumerate(names)}
    reg = make_registry(tmp_path / "reg", [vllm_entry(n, p) for n, p in models.items()])

    procs = [popen(reg, env, tmp_path, "lock", n, "--set-expected") for n in names]
    for proc in procs:
        code, _out, err = finish(proc)
        assert code == 0, err

    for name in names:
        state = lock_state(reg, name)
        assert state["locked"] is True, name
        assert state["expected_aggregate_sha256"] == folder_aggregate(models[name]), name
    listed = run(reg, "list")
    assert listed.returncode == 0, listed.stderr
    assert {row["name"] for row in listed.json() if row["locked"]} == set(names)


# --- Hydra sweep --------------------------------------------------------------------------


def test_sweep_verifies_each_name_and_exits_2_if_any_is_violated(tmp_path, run):
    models = {"m_(A)": make_model(tmp_path / "a", seed=1), "b": make_model(tmp_path / "b", seed=2)}
    reg = make_registry(tmp_path / "reg", [vllm_entry(n, p) for n, p in models.items()])
    sweep = "name='m_(A)','b'"

    r = run(reg, "verify", "-m", sweep)

    assert r.returncode == 0, r.stderr
    printed = {doc["name"]: doc for doc in json_stream(r.stdout)}
    assert set(printed) == set(models)
    for name, path in models.items():
        assert printed[name]["aggregate_sha256"] == folder_aggregate(path)
        assert recorded_aggregate(reg, name) == folder_aggregate(path)
    first_a = lock_state(reg, "m_(A)")["last_verified"]
    assert not (tmp_path / "outputs").exists() and not (tmp_path / ".hydra").exists()

    assert run(reg, "lock", "b", "--set-expected").returncode == 0
    good_b = folder_aggregate(models["b"])
    tamper_one_byte(models["b"] / SHARD)

    r = run(reg, "verify", "-m", sweep)

    assert r.returncode == 2, (r.stdout, r.stderr)
    assert good_b in r.stderr and folder_aggregate(models["b"]) in r.stderr
    # the other job still ran and recorded its verify
    assert lock_state(reg, "m_(A)")["last_verified"] > first_a
    assert lock_state(reg, "b")["expected_aggregate_sha256"] == good_b
