"""Shared fixtures: real registry folders in tmp_path and the real CLI."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import traceback
from collections.abc import Sequence
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


def pytest_collection_modifyitems(config, items):
    """Tests marked ``network`` download from the internet: CI runs them
    (CI=true), a developer's run skips them."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        return
    skip = pytest.mark.skip(reason="needs the internet; runs in CI only (CI=true)")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


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
    from loader.registry.core import use_registry

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


# Flags that hand a run to a Hydra app: Hydra keeps global state and its
# launchers start worker processes, so those runs stay real processes.
_HYDRA_WORDS = {"--cfg", "-c", "--resolve", "--package", "-p", "-m", "--multirun", "--info", "-i"}


def _needs_process(args: Sequence[str]) -> bool:
    if threading.current_thread() is not threading.main_thread():
        return True  # cwd, environment and sys.stdout are process-wide
    return any(
        word in _HYDRA_WORDS or word.startswith(("hydra/", "hydra.", "+hydra", "~hydra"))
        for word in args
    )


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    process: bool = False,
) -> Result:
    """Run ``imageworks-loader ARGS``: in this process through ``cli.main``
    (about 20x cheaper than starting one), or as a real process when
    ``process=True``, from a thread, or when a Hydra flag hands the run to a
    Hydra app. Both give the same exit code, stdout and stderr."""
    if process or _needs_process(args):
        return run_cli_process(*args, cwd=cwd, env=env)
    return run_cli_in_process(*args, cwd=cwd, env=env)


def run_cli_process(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Result:
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


def run_cli_in_process(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Result:
    """``cli.main(args)`` with its own working folder, environment, stdout and
    stderr, as a process would have; restores all of them afterwards. An
    exception that would end a process with a traceback gives exit code 1 and
    the traceback on stderr, as Python prints it."""
    from loader.frontdoors import cli
    from loader.registry.core import use_registry

    out, err = io.StringIO(), io.StringIO()
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    previous = use_registry(None)
    try:
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exc:  # --help, --version
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        use_registry(previous)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli
