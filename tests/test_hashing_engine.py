"""The hashing engine against real files: folders, downloads, Ollama blobs, the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import sha, write

from loader.errors import EXIT_INTEGRITY, EXIT_USAGE, ArtifactError, BlobDigestMismatch
from loader.integrity.hashing import (
    ArtifactSet,
    HashCache,
    HashStats,
    aggregate_sha256,
    changed_files,
    hash_files,
    resolve_artifact_set,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "real_artifacts.json"
NO_OLLAMA = Path("/nonexistent-ollama-models")


def resolve_folder(path: Path | str, name: str = "m") -> ArtifactSet:
    return resolve_artifact_set(
        name=name,
        model_path=str(path),
        download_path=None,
        download_files=None,
        ollama_models_dir=NO_OLLAMA,
    )


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A small model folder: nested files, a file link and a folder link inside it."""
    root = tmp_path / "model"
    write(root / "config.json", b'{"hidden_size": 8}')
    write(root / "model-00001-of-00002.safetensors", os.urandom(300_000))
    write(root / "model-00002-of-00002.safetensors", os.urandom(200_001))
    write(root / "tokenizer" / "vocab.json", b'{"a": 1}')
    write(root / "tokenizer" / "deep" / "merges.txt", b"a b\n")
    (root / "config-link.json").symlink_to("config.json")
    (root / "tok-link").symlink_to("tokenizer", target_is_directory=True)
    (root / "tokenizer" / "deep" / "loop").symlink_to("../..", target_is_directory=True)
    return root


# --- aggregate ----------------------------------------------------------------


def test_aggregate_is_the_documented_formula() -> None:
    files = [{"path": "b.bin", "sha256": "22" * 32}, {"path": "a.json", "sha256": "11" * 32}]
    text = f"{'11' * 32}  a.json\n{'22' * 32}  b.bin"
    assert aggregate_sha256(files) == sha(text.encode())
    assert aggregate_sha256(list(reversed(files))) == aggregate_sha256(files)


def test_aggregate_recomputes_the_six_real_locks() -> None:
    entries = json.loads(DATA.read_text(encoding="utf-8"))
    assert len(entries) == 6
    for entry in entries:
        arts = entry["artifacts"]
        assert len(arts["files"]) > 0
        assert aggregate_sha256(arts["files"]) == arts["aggregate_sha256"], entry["name"]


def test_changed_files_names_added_removed_and_modified() -> None:
    old = [{"path": "a", "sha256": "1"}, {"path": "b", "sha256": "2"}, {"path": "c", "sha256": "3"}]
    new = [{"path": "a", "sha256": "1"}, {"path": "b", "sha256": "9"}, {"path": "d", "sha256": "4"}]
    assert changed_files(old, new) == ["b", "c", "d"]
    assert changed_files(old, old) == []


# --- resolving a plain folder ---------------------------------------------------


def test_folder_lists_every_regular_file_with_links_inside_the_root(model: Path) -> None:
    os.mkfifo(model / "a-fifo")  # not a model file: must be skipped, not read
    aset = resolve_folder(model, "m")
    assert aset.kind == "files"
    assert aset.root == model
    assert aset.expected_digests == {}
    assert aset.files == [
        "config-link.json",
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "tok-link/deep/merges.txt",
        "tok-link/vocab.json",
        "tokenizer/deep/merges.txt",
        "tokenizer/vocab.json",
    ]


def test_linked_file_is_hashed_as_its_target_and_read_once(model: Path) -> None:
    aset = resolve_folder(model)
    stats = HashStats()
    digests = {f["path"]: f["sha256"] for f in hash_files(aset, stats=stats)}
    assert digests["config-link.json"] == digests["config.json"] == sha(b'{"hidden_size": 8}')
    assert digests["tok-link/vocab.json"] == sha(b'{"a": 1}')
    # 8 paths but only 5 distinct files on disk.
    assert stats.files_total == 8
    assert stats.files_read == 5


def test_symlink_escaping_the_root_is_refused(tmp_path: Path, model: Path) -> None:
    secret = write(tmp_path / "outside" / "secret.key", b"do not read")
    (model / "extra" / "nested").mkdir(parents=True)
    (model / "extra" / "nested" / "stolen.bin").symlink_to(secret)
    with pytest.raises(ArtifactError) as exc:
        resolve_folder(model, "victim")
    msg = str(exc.value)
    assert "victim" in msg
    assert str(model / "extra" / "nested" / "stolen.bin") in msg
    assert str(secret) in msg
    assert exc.value.exit_code == EXIT_USAGE
    assert "\n" not in msg


def test_directory_symlink_escaping_the_root_is_refused(tmp_path: Path, model: Path) -> None:
    write(tmp_path / "elsewhere" / "weights.bin", b"x")
    (model / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ArtifactError, match="points outside") as exc:
        resolve_folder(model)
    assert str(model / "more") in str(exc.value)


def test_link_swapped_to_outside_after_resolving_is_not_read(tmp_path: Path, model: Path) -> None:
    aset = resolve_folder(model)
    secret = write(tmp_path / "outside" / "secret.key", b"do not read")
    shard = model / "model-00002-of-00002.safetensors"
    shard.unlink()
    shard.symlink_to(secret)
    stats = HashStats()
    with pytest.raises(ArtifactError, match="points outside"):
        hash_files(aset, stats=stats)
    assert stats.files_read == 0
    assert stats.bytes_read == 0


def test_missing_or_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist") as exc:
        resolve_folder(tmp_path / "gone", "ghost")
    assert "ghost" in str(exc.value)
    assert str(tmp_path / "gone") in str(exc.value)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ArtifactError, match="no files found"):
        resolve_folder(tmp_path / "empty")
    with pytest.raises(ArtifactError, match="no model_path"):
        resolve_artifact_set(
            name="x",
            model_path=None,
            download_path=None,
            download_files=None,
            ollama_models_dir=NO_OLLAMA,
        )


def test_file_vanishing_between_resolve_and_hash_is_an_error(model: Path) -> None:
    aset = resolve_folder(model)
    (model / "config.json").unlink()
    with pytest.raises(ArtifactError, match="config"):
        hash_files(aset)


# --- tracked download files --------------------------------------------------------


def resolve_downloads(root: Path, files: list[str], name: str = "dl") -> ArtifactSet:
    return resolve_artifact_set(
        name=name,
        model_path=str(root / "ignored"),
        download_path=str(root),
        download_files=files,
        ollama_models_dir=NO_OLLAMA,
    )


def test_download_files_are_exactly_the_listed_ones(model: Path) -> None:
    aset = resolve_downloads(model, ["tokenizer/vocab.json", "config.json", "./config.json"])
    assert aset.root == model
    assert aset.files == ["config.json", "tokenizer/vocab.json"]
    got = hash_files(aset)
    assert got == [
        {"path": "config.json", "sha256": sha(b'{"hidden_size": 8}')},
        {"path": "tokenizer/vocab.json", "sha256": sha(b'{"a": 1}')},
    ]


@pytest.mark.parametrize("bad", ["../outside/secret.key", "tokenizer/../../x", "/etc/passwd", ""])
def test_download_file_leaving_the_root_is_refused(tmp_path: Path, model: Path, bad: str) -> None:
    write(tmp_path / "outside" / "secret.key", b"do not read")
    with pytest.raises(ArtifactError, match="refused|plain path") as exc:
        resolve_downloads(model, ["config.json", bad], name="dl-entry")
    assert "dl-entry" in str(exc.value)


def test_download_file_through_an_escaping_link_is_refused(tmp_path: Path, model: Path) -> None:
    write(tmp_path / "outside" / "secret.key", b"do not read")
    (model / "ext").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(ArtifactError, match="points outside") as exc:
        resolve_downloads(model, ["ext/secret.key"])
    assert str(model / "ext") in str(exc.value)


def test_missing_download_file_or_folder_is_an_error(tmp_path: Path, model: Path) -> None:
    with pytest.raises(ArtifactError, match="not found") as exc:
        resolve_downloads(model, ["config.json", "model-00003-of-00003.safetensors"])
    assert "model-00003-of-00003.safetensors" in str(exc.value)
    with pytest.raises(ArtifactError, match="does not exist"):
        resolve_downloads(tmp_path / "nowhere", ["config.json"])
    with pytest.raises(ArtifactError, match="not a file"):
        resolve_downloads(model, ["tokenizer"])


# --- Ollama ---------------------------------------------------------------------------


def add_blob(models: Path, data: bytes) -> dict[str, object]:
    digest = sha(data)
    write(models / "blobs" / f"sha256-{digest}", data)
    return {
        "mediaType": "application/octet-stream",
        "digest": f"sha256:{digest}",
        "size": len(data),
    }


def add_manifest(models: Path, parts: list[str], blobs: list[bytes]) -> Path:
    descs = [add_blob(models, b) for b in blobs]
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {**descs[0], "mediaType": "application/vnd.docker.container.image.v1+json"},
        "layers": descs[1:],
    }
    path = models.joinpath("manifests", *parts)
    write(path, json.dumps(doc).encode())
    return path


def resolve_ollama(models: Path, ref: str, name: str = "olm") -> ArtifactSet:
    return resolve_artifact_set(
        name=name,
        model_path=ref,
        download_path=ref,  # real entries repeat the ref here with no download files
        download_files=[],
        ollama_models_dir=models,
    )


@pytest.fixture
def ollama(tmp_path: Path) -> Path:
    models = tmp_path / "ollama-models"
    shared_license = b"MIT license text"
    add_manifest(
        models,
        ["registry.ollama.ai", "library", "qwen3", "8b"],
        [
            b'{"model_format":"gguf"}',
            os.urandom(100_000),
            b"template {{ .Prompt }}",
            shared_license,
        ],
    )
    add_manifest(
        models,
        ["registry.ollama.ai", "huihui_ai", "gpt-oss-abliterated", "20b"],
        [b'{"model_family":"gptoss"}', os.urandom(50_000), shared_license],
    )
    add_manifest(models, ["registry.ollama.ai", "library", "tiny", "latest"], [b"{}", b"weights"])
    add_manifest(
        models,
        ["hf.co", "bartowski", "Some-Model-GGUF", "Q4_K_M"],
        [b'{"c":1}', b"gguf bytes", b"gguf bytes"],  # a layer repeated: hashed once
    )
    return models


@pytest.mark.parametrize(
    ("ref", "nblobs"),
    [
        ("ollama:/qwen3:8b", 4),
        ("ollama:qwen3:8b", 4),
        ("ollama:/library/qwen3:8b", 4),
        ("ollama:/huihui_ai/gpt-oss-abliterated:20b", 3),
        ("ollama:/tiny", 2),
        ("ollama:/hf.co/bartowski/Some-Model-GGUF:Q4_K_M", 2),
        ("ollama:/hf.co/bartowski/some-model-gguf:q4_k_m", 2),  # names are case-insensitive
    ],
)
def test_ollama_manifest_resolves_to_its_blobs(ollama: Path, ref: str, nblobs: int) -> None:
    aset = resolve_ollama(ollama, ref)
    assert aset.kind == "ollama"
    assert aset.root == ollama
    assert len(aset.files) == nblobs
    assert set(aset.expected_digests) == set(aset.files)
    for rel in aset.files:
        assert rel == f"blobs/sha256-{aset.expected_digests[rel]}"
    got = hash_files(aset)
    assert [f["path"] for f in got] == aset.files
    assert all(f["sha256"] == aset.expected_digests[f["path"]] for f in got)


def test_ollama_missing_manifest_blob_or_bad_json(ollama: Path) -> None:
    with pytest.raises(ArtifactError, match="manifest") as exc:
        resolve_ollama(ollama, "ollama:/qwen3:14b", name="qwen3_14b")
    assert "qwen3_14b" in str(exc.value)
    assert str(ollama / "manifests" / "registry.ollama.ai" / "library" / "qwen3" / "14b") in str(
        exc.value
    )

    manifest = ollama / "manifests/registry.ollama.ai/library/tiny/latest"
    doc = json.loads(manifest.read_text())
    blob = ollama / "blobs" / doc["layers"][0]["digest"].replace(":", "-")
    blob.unlink()
    with pytest.raises(ArtifactError, match="missing") as exc:
        resolve_ollama(ollama, "ollama:/tiny", name="tiny-entry")
    msg = str(exc.value)
    assert "tiny-entry" in msg and str(manifest) in msg and doc["layers"][0]["digest"] in msg

    manifest.write_text("{not json")
    with pytest.raises(ArtifactError, match="not readable JSON") as exc:
        resolve_ollama(ollama, "ollama:/tiny")
    assert str(manifest) in str(exc.value)

    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": [{"digest": "sha256:../../x"}]}))
    with pytest.raises(ArtifactError, match="invalid blob digest"):
        resolve_ollama(ollama, "ollama:/tiny")


def test_ollama_tampered_blob_is_a_digest_mismatch(ollama: Path) -> None:
    aset = resolve_ollama(ollama, "ollama:/qwen3:8b", name="qwen3_8b")
    victim = max(aset.files, key=lambda rel: (ollama / rel).stat().st_size)
    data = bytearray((ollama / victim).read_bytes())
    data[1234] ^= 0xFF
    (ollama / victim).write_bytes(bytes(data))
    with pytest.raises(BlobDigestMismatch) as exc:
        hash_files(aset)
    msg = str(exc.value)
    assert exc.value.exit_code == EXIT_INTEGRITY
    assert victim in msg and "qwen3_8b" in msg
    assert aset.expected_digests[victim] in msg
    assert sha(bytes(data)) in msg


def test_ollama_cache_hit_with_wrong_digest_is_a_mismatch(tmp_path: Path, ollama: Path) -> None:
    aset = resolve_ollama(ollama, "ollama:/tiny")
    cache = HashCache.load(tmp_path / "cache.json")
    rel = aset.files[0]
    real = os.path.realpath(ollama / rel)
    cache.store(real, os.stat(real), "0" * 64)  # a poisoned record with the right stat
    stats = HashStats()
    with pytest.raises(BlobDigestMismatch, match="0{64}"):
        hash_files(aset, cache=cache, stats=stats)
    assert stats.files_read == 0  # caught without reading anything


# --- hashing and the cache ------------------------------------------------------------


def test_digests_match_hashlib_whatever_the_chunk_or_worker_count(tmp_path: Path) -> None:
    root = tmp_path / "m"
    contents = {
        f"part-{i}.bin": os.urandom(n) for i, n in enumerate([0, 1, 65535, 65537, 1_000_003])
    }
    for rel, data in contents.items():
        write(root / rel, data)
    aset = resolve_folder(root)
    expected = [{"path": rel, "sha256": sha(data)} for rel, data in sorted(contents.items())]
    for workers in (1, 3, 0):
        for chunk in (64 * 1024, 4 * 1024 * 1024):
            assert hash_files(aset, workers=workers, chunk_bytes=chunk) == expected


def test_second_run_reads_nothing_and_stat_change_rereads(tmp_path: Path, model: Path) -> None:
    cache_path = tmp_path / "state" / "hash_cache.json"
    aset = resolve_folder(model)
    first_stats = HashStats()
    first = hash_files(aset, cache=HashCache.load(cache_path), stats=first_stats)
    assert first_stats.files_read == 5 and first_stats.cache_hits == 0
    # The caller saves; nothing was written yet.
    assert not cache_path.exists()

    cache = HashCache.load(cache_path)
    hash_files(aset, cache=cache)
    cache.save()
    keys = set(json.loads(cache_path.read_text())["entries"])
    assert keys == {os.path.realpath(model / rel) for rel in aset.files}

    again = HashStats()
    assert hash_files(aset, cache=HashCache.load(cache_path), stats=again) == first
    assert again.files_read == 0 and again.bytes_read == 0 and again.cache_hits == 8

    # Same size, same mtime, different bytes: only the ctime (and the content) changed.
    shard = model / "model-00001-of-00002.safetensors"
    before = shard.stat()
    data = bytearray(shard.read_bytes())
    data[0] ^= 0x01
    shard.write_bytes(bytes(data))
    os.utime(shard, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert shard.stat().st_mtime_ns == before.st_mtime_ns
    assert shard.stat().st_size == before.st_size

    third = HashStats()
    after = hash_files(aset, cache=HashCache.load(cache_path), stats=third)
    assert third.files_read == 1 and third.cache_hits == 7
    assert changed_files(first, after) == ["model-00001-of-00002.safetensors"]


def test_rehash_rereads_everything_and_refreshes_the_cache(tmp_path: Path, model: Path) -> None:
    cache_path = tmp_path / "hash_cache.json"
    aset = resolve_folder(model)
    cache = HashCache.load(cache_path)
    truth = hash_files(aset, cache=cache)
    cache.save()

    # Poison one record while keeping its stat: only a rehash can notice.
    real = os.path.realpath(model / "config.json")
    cache = HashCache.load(cache_path)
    cache.store(real, os.stat(real), "f" * 64)
    cache.save()
    poisoned = {f["path"]: f["sha256"] for f in hash_files(aset, cache=HashCache.load(cache_path))}
    assert poisoned["config.json"] == "f" * 64

    cache = HashCache.load(cache_path)
    stats = HashStats()
    assert hash_files(aset, cache=cache, rehash=True, stats=stats) == truth
    assert stats.files_read == 5 and stats.cache_hits == 0
    cache.save()
    assert HashCache.load(cache_path).lookup(real, os.stat(real)) == sha(b'{"hidden_size": 8}')


def test_tampering_one_byte_of_one_shard_is_named(model: Path) -> None:
    aset = resolve_folder(model)
    before = hash_files(aset)
    shard = model / "model-00002-of-00002.safetensors"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x80
    shard.write_bytes(bytes(data))
    after = hash_files(aset)
    assert changed_files(before, after) == ["model-00002-of-00002.safetensors"]
    assert aggregate_sha256(before) != aggregate_sha256(after)


def test_cache_lookup_needs_every_stat_field(tmp_path: Path) -> None:
    f = write(tmp_path / "f.bin", b"abc")
    st = os.stat(f)
    cache = HashCache(tmp_path / "c.json")
    cache.store(f, st, sha(b"abc"))
    assert cache.lookup(f, st) == sha(b"abc")
    for field_name in ("st_size", "st_mtime_ns", "st_ctime_ns", "st_ino"):
        fields = {
            "st_size": st.st_size,
            "st_mtime_ns": st.st_mtime_ns,
            "st_ctime_ns": st.st_ctime_ns,
            "st_ino": st.st_ino,
        }
        fields[field_name] += 1
        fake = os.stat_result(
            (st.st_mode, fields["st_ino"], st.st_dev, st.st_nlink, st.st_uid, st.st_gid,
             fields["st_size"], 0, 0, 0,
             st.st_atime, st.st_mtime, st.st_ctime,
             st.st_atime_ns, fields["st_mtime_ns"], fields["st_ctime_ns"])
        )  # fmt: skip
        assert cache.lookup(f, fake) is None, field_name
    assert cache.lookup(tmp_path / "other.bin", st) is None


def test_corrupt_or_missing_cache_is_empty_and_never_crashes(
    tmp_path: Path, model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Warnings are log records (loader.logs); a front door shows them on stderr.
    missing = HashCache.load(tmp_path / "none.json")
    assert len(missing) == 0
    assert not caplog.records

    bad = write(tmp_path / "bad.json", b'{"version": 1, "entries": [tru')
    cache = HashCache.load(bad)
    assert len(cache) == 0
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "damaged" in caplog.text
    caplog.clear()

    # A damaged cache still works: hashing reads everything, saving repairs it.
    stats = HashStats()
    hash_files(resolve_folder(model), cache=cache, stats=stats)
    assert stats.files_read == 5
    cache.save()
    assert len(HashCache.load(bad)) == 5
    assert not caplog.records


def test_save_merges_with_what_another_writer_saved(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    a, b = HashCache.load(path), HashCache.load(path)
    fa, fb = write(tmp_path / "a", b"a"), write(tmp_path / "b", b"b")
    a.store(fa, os.stat(fa), sha(b"a"))
    b.store(fb, os.stat(fb), sha(b"b"))
    a.save()
    b.save()  # b never saw a's record, yet must keep it
    merged = HashCache.load(path)
    assert merged.lookup(fa, os.stat(fa)) == sha(b"a")
    assert merged.lookup(fb, os.stat(fb)) == sha(b"b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c.json", "c.json.lock"]


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from loader.hashing import HashCache, hash_files, resolve_artifact_set

    model, cache_path, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    aset = resolve_artifact_set(name=model, model_path=model, download_path=None,
                                download_files=None, ollama_models_dir=Path("/none"))
    while not go.exists():
        time.sleep(0.001)
    # One save per file: many chances to interleave with the other process.
    for rel in aset.files:
        cache = HashCache.load(cache_path)
        one = type(aset)(root=aset.root, files=[rel])
        hash_files(one, cache=cache, workers=1)
        cache.save()
    """
)


def test_two_processes_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    cache_path = tmp_path / "registry" / "hash_cache.json"
    go = tmp_path / "go"
    expected: dict[str, str] = {}
    models = []
    for m in ("alpha", "beta"):
        root = tmp_path / m
        for i in range(25):
            data = f"{m}-{i}".encode() * 100
            expected[os.path.realpath(write(root / f"f{i:02d}.bin", data))] = sha(data)
        models.append(root)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), str(cache_path), str(go)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for root in models
    ]
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert err == ""
    entries = json.loads(cache_path.read_text())["entries"]
    assert {k: v["sha256"] for k, v in entries.items()} == expected
    assert not list(cache_path.parent.glob("*.tmp"))


# --- progress -----------------------------------------------------------------------------


def test_progress_only_when_asked_or_on_a_terminal(
    model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aset = resolve_folder(model)
    hash_files(aset, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("\rhashing: ")
    assert err.rsplit("\r", 1)[-1].startswith("hashing: 8/8 files")
    assert err.endswith("\n")

    hash_files(aset, progress=False)
    hash_files(aset)  # auto: captured stderr is not a terminal
    assert capsys.readouterr().err == ""
