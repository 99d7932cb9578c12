"""Real model folders, a registry over them, and real doit runs, for the pipeline tests."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import CURATED, DISCOVERED, ROOT, write, write_json

PYTHON = sys.executable
DODO = ROOT / "dodo.py"
SHARDS = ("config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")


def make_model(root: Path, seed: int) -> Path:
    """A small model folder: a config and two shards."""
    rnd = random.Random(seed)
    write(root / SHARDS[0], json.dumps({"seed": seed}).encode())
    write(root / SHARDS[1], rnd.randbytes(120_000))
    write(root / SHARDS[2], rnd.randbytes(70_001))
    return root


def model_entry(name: str, path: Path, **extra) -> dict:
    return {
        "name": name,
        "display_name": name,
        "backend": "vllm",
        "backend_config": {"model_path": str(path), "port": "${backends.vllm.port}"},
        **extra,
    }


@dataclass
class Site:
    """A registry folder over real model folders, and where doit keeps state."""

    registry: Path
    models: dict[str, Path]
    env: dict[str, str]
    ollama: Any = None  # the Ollama stand-in, when the site has one

    def doit(self, *args: str, overrides: tuple[str, ...] = (), timeout: float = 180):
        """``doit ARGS registry.dir=REG OVERRIDES`` as a real process (cwd: the repo)."""
        proc = subprocess.run(
            [
                PYTHON,
                "-m",
                "doit",
                "-f",
                str(DODO),
                *args,
                f"registry.dir={self.registry}",
                *overrides,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=self.env,
            timeout=timeout,
        )
        return proc

    def curated(self) -> list[dict]:
        return json.loads((self.registry / CURATED).read_text())

    def discovered(self) -> list[dict]:
        return json.loads((self.registry / DISCOVERED).read_text())

    def write_curated(self, entries: list[dict]) -> None:
        write_json(self.registry / CURATED, entries)

    def write_discovered(self, entries: list[dict]) -> None:
        write_json(self.registry / DISCOVERED, entries)


def make_site(tmp_path: Path, names: tuple[str, ...] = ("alpha", "beta_(Q4_K_M)")) -> Site:
    models = {name: make_model(tmp_path / "weights" / f"m{i}", i) for i, name in enumerate(names)}
    registry = tmp_path / "registry"
    registry.mkdir()
    write_json(registry / CURATED, [model_entry(n, p) for n, p in models.items()])
    write_json(registry / DISCOVERED, [])
    env = dict(os.environ)
    env.update(
        {
            "OLLAMA_MODELS": str(tmp_path / "ollama-models"),
            "TMPDIR": str(tmp_path),
        }
    )
    return Site(registry, models, env)


def ran(stdout: str) -> list[str]:
    """Tasks whose actions ran (doit prints `.  NAME`)."""
    return sorted(line[3:] for line in stdout.splitlines() if line.startswith(".  "))


def skipped(stdout: str) -> list[str]:
    return sorted(line[3:] for line in stdout.splitlines() if line.startswith("-- "))


@pytest.fixture
def importer_site(tmp_path):
    """A site whose importers have sources: the Ollama stand-in (a real
    process) serving qwen3:8b, its models folder, and the weights folder as
    paths.models."""
    from importers_support import QWEN3, OllamaStandIn

    server = OllamaStandIn(tmp_path)
    server.serve([QWEN3])
    site = with_importer_sources(make_site(tmp_path), tmp_path, server.url)
    site.ollama = server
    yield site
    server.stop()


def with_importer_sources(site: Site, tmp_path: Path, ollama_url: str) -> Site:
    from importers_support import ollama_models_folder

    ollama_models_folder(tmp_path / "ollama-models", "qwen3:8b", [b"config", b"weights"])
    site.env["OLLAMA_MODELS"] = str(tmp_path / "ollama-models")
    site.env["OLLAMA_HOST"] = ollama_url
    site.env["IMAGEWORKS_MODEL_ROOT"] = str(tmp_path / "weights")
    return site
