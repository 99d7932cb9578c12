"""Helpers for the hardening tests: tiny registries, bounded CLI runs, a lock
held by another process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CLI, CURATED, DISCOVERED, Result, folder_digest

LOCK_NAME = ".model_registry.lock"

HOLDER = """
import sys, time
from loader.file_locks import file_lock
with file_lock(sys.argv[1], 5):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def entry(name: str, **fields) -> dict:
    """A small valid entry; ``fields`` replace or add top-level fields."""
    base = {
        "name": name,
        "backend": "vllm",
        "backend_config": {"port": 24001, "model_path": None},
        "capabilities": {"text": True},
        "roles": ["chat"],
    }
    base.update(fields)
    return base


def make_registry(
    folder: Path, curated: list | None = None, discovered: list | None = None
) -> Path:
    """A registry folder with the given layers (JSON-encoded, 2-space indent)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, layer in ((CURATED, curated), (DISCOVERED, discovered)):
        if layer is not None:
            (folder / name).write_text(json.dumps(layer, indent=2) + "\n", encoding="utf-8")
    return folder


def run_bounded(*args: str, timeout: float = 30, env: dict | None = None) -> Result:
    """The real CLI with a hard time limit (a hang fails the test, and the
    child is killed rather than left behind). A ``registry.dir=`` word is
    passed as IMAGEWORKS_REGISTRY_DIR instead, so the composed config is
    cached across commands (see ``shared_config_cache``)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    folders = [a for a in args if a.startswith("registry.dir=")]
    if folders:
        full_env["IMAGEWORKS_REGISTRY_DIR"] = folders[-1].partition("=")[2]
        args = tuple(a for a in args if not a.startswith("registry.dir="))
    try:
        proc = subprocess.run(
            [str(CLI), *args], capture_output=True, text=True, env=full_env, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"imageworks-loader {' '.join(args)} ran over {timeout}s") from None
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(result: Result, *needles: str) -> str:
    """Exit 1, exactly one stderr line, no traceback, each needle in it."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("imageworks-loader: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def unchanged(folder: Path):
    """Snapshot of a folder's files, to compare after a refused command."""
    return folder_digest(folder)


@contextlib.contextmanager
def lock_held_elsewhere(path: Path, seconds: float = 120) -> Iterator[subprocess.Popen]:
    """Another process holding ``path``'s file lock until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()


@pytest.fixture(autouse=True)
def shared_config_cache(tmp_path_factory, monkeypatch):
    """One config cache for all hardening tests: Hydra composes once per set
    of overrides instead of once per test (seconds each on a loaded machine)."""
    cache = tmp_path_factory.getbasetemp() / "hardening-config-cache"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("IMAGEWORKS_LOADER_CACHE", str(cache))
    return cache


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.monotonic()
    value = fn(*args, **kwargs)
    return time.monotonic() - started, value
