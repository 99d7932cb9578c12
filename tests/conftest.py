"""Shared fixtures: real registry folders in tmp_path and the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from process_support import kill_marked, wait_until_none_marked

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
REAL_REGISTRY = DATA / "imageworks-registry"
DEMO_REGISTRY = ROOT / "configs"
CLI = Path(sys.executable).parent / "imageworks-loader"

CURATED = "model_registry.curated.json"
DISCOVERED = "model_registry.discovered.json"
SNAPSHOT = "model_registry.json"


RUN_MARKER = "IMAGEWORKS_LOADER_TEST_RUN"


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind():
    """After the whole run, no process started by it may still be running.

    Every process the tests start inherits this marker in its environment;
    servers started in their own session are found by it too.
    """
    run_id = f"{os.getpid()}-{os.urandom(4).hex()}"
    os.environ[RUN_MARKER] = run_id
    yield
    left = wait_until_none_marked(RUN_MARKER, run_id, timeout=5)
    leftovers = kill_marked(RUN_MARKER, run_id) if left else []
    assert not leftovers, "processes left behind by the tests:\n" + "\n".join(leftovers)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own config/snapshot cache and no inherited registry dir."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("IMAGEWORKS_LOADER_CACHE", str(cache))
    monkeypatch.delenv("IMAGEWORKS_REGISTRY_DIR", raising=False)
    from loader.registry import use_registry

    use_registry(None)
    yield cache
    use_registry(None)


def copy_registry(source: Path, target: Path, *, snapshot: bool = True) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in (CURATED, DISCOVERED) + ((SNAPSHOT,) if snapshot else ()):
        if (source / name).exists():
            shutil.copyfile(source / name, target / name)
    return target


@pytest.fixture
def real_registry(tmp_path) -> Path:
    """A writable copy of the real ImageWorks registry."""
    return copy_registry(REAL_REGISTRY, tmp_path / "real")


@pytest.fixture
def demo_registry(tmp_path) -> Path:
    """A writable copy of the shipped demo registry (without its snapshot)."""
    return copy_registry(DEMO_REGISTRY, tmp_path / "demo", snapshot=False)


def folder_digest(folder: Path) -> dict[str, str]:
    """Every file in a folder (lock files aside) by content hash."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.endswith(".lock")
    }


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    """Write bytes, creating the folders on the way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def json_stream(text: str) -> list:
    """Every JSON document printed one after another (a Hydra sweep prints one per job)."""
    decoder = json.JSONDecoder()
    documents, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return documents
        document, pos = decoder.raw_decode(text, pos)
        documents.append(document)


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the installed ``imageworks-loader`` as a real process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=120,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli
