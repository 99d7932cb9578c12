"""Path races against hashing: a thread keeps swapping parts of a model
folder while it is hashed, for a seeded number of rounds. Whatever the
timing, hashing must never read outside the root, never block, and never
return a digest of anything but a whole version of a file."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path

import pytest

from loader.errors import ArtifactError
from loader.integrity import hashing

SEED = int(os.environ.get("IMAGEWORKS_STRESS_SEED", "11"))
ROUNDS = int(os.environ.get("IMAGEWORKS_STRESS_ROUNDS", "40"))
INSIDE, SECRET = b"inside" * 1000, b"secret" * 1000
VERSION_A, VERSION_B = os.urandom(200_000), os.urandom(200_001)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "w.bin").write_bytes(INSIDE)
    (root / "a.bin").write_bytes(VERSION_A)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "w.bin").write_bytes(SECRET)
    (outside / "a.bin").write_bytes(SECRET)
    return root, outside


def _tricks(root: Path, outside: Path) -> dict:
    """Each trick: (do, undo), run alternately by the racing thread."""
    sub, old = root / "sub", root / "sub.old"
    weights = root / "sub" / "w.bin"

    def link_parent():
        sub.rename(old)
        sub.symlink_to(outside)

    def unlink_parent():
        sub.unlink()
        old.rename(sub)

    def fifo():
        weights.unlink()
        os.mkfifo(weights)

    def unfifo():
        # Restore atomically: a truncate-then-write would expose an empty
        # regular file, which is a real (if brief) version of the file.
        tmp = root.parent / "w.new"
        tmp.write_bytes(INSIDE)
        os.replace(tmp, weights)

    def link_file():
        weights.unlink()
        weights.symlink_to(outside / "w.bin")

    def replace(data: bytes):
        tmp = root / ".a.new"
        tmp.write_bytes(data)
        os.replace(tmp, root / "a.bin")

    return {
        "parent-symlink": (link_parent, unlink_parent),
        "fifo": (fifo, unfifo),
        "file-symlink": (link_file, unfifo),
        "rewrite": (lambda: replace(VERSION_B), lambda: replace(VERSION_A)),
    }


@pytest.mark.parametrize("trick", ["parent-symlink", "fifo", "file-symlink", "rewrite"])
def test_hashing_under_a_racing_swapper(tmp_path, trick):
    root, outside = _setup(tmp_path)
    aset = hashing.resolve_artifact_set(
        name="m",
        model_path=str(root),
        download_path=None,
        download_files=None,
        ollama_models_dir=root,
    )
    do, undo = _tricks(root, outside)[trick]
    rng = random.Random(f"{SEED}-{trick}")
    stop = threading.Event()

    def swapper():
        while not stop.is_set():
            do()
            time.sleep(rng.uniform(0, 0.002))
            undo()
            time.sleep(rng.uniform(0, 0.002))

    allowed = {"a.bin": {_digest(VERSION_A), _digest(VERSION_B)}, "sub/w.bin": {_digest(INSIDE)}}
    outcomes = {"ok": 0, "refused": 0}
    racer = threading.Thread(target=swapper, daemon=True)
    racer.start()
    try:
        for _ in range(ROUNDS):
            result: list = []

            def run(result=result):
                try:
                    result.append(hashing.hash_files(aset, workers=2, chunk_bytes=65536))
                except ArtifactError as exc:
                    result.append(exc)

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            worker.join(10)
            assert not worker.is_alive(), "hashing blocked"
            if isinstance(result[0], ArtifactError):
                outcomes["refused"] += 1
                assert "model 'm'" in str(result[0])
                continue
            outcomes["ok"] += 1
            for record in result[0]:
                assert record["sha256"] in allowed[record["path"]], record
    finally:
        stop.set()
        racer.join(5)
    assert outcomes["ok"] + outcomes["refused"] == ROUNDS
