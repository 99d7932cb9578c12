"""Helpers for the vision-probe tests: the stand-in server as a real process,
images made with Pillow, and registry copies pointed at the stand-in."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from conftest import CURATED, read_json, write_json

SERVER = Path(__file__).resolve().parent / "servers" / "openai_vision.py"

QWEN_VL = "qwen2.5-vl-7b-instruct_(AWQ)"  # vLLM, vision; served id = its name
FLORENCE = "florence-2-large_(FP16)"  # vLLM, vision
QWEN3 = "qwen3_8b_(Q4_K_M)"  # Ollama, text only
OLLAMA_VL = "qwen2.5vl_7b_(Q4_K_M)"  # added by add_ollama_vision_entry
OLLAMA_VL_TAG = "qwen2.5vl:7b"


@dataclass
class StandIn:
    """A running ``openai_vision.py`` process."""

    process: subprocess.Popen
    port: int
    log: Path

    def requests(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text("utf-8").splitlines()]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def free_port() -> int:
    """A port nothing listens on (the OS picked it; we closed it again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(log: Path, *, mode: str = "honest", models: Sequence[str] = (QWEN_VL,), port: int = 0,
           extra: Sequence[str] = ()) -> subprocess.Popen:  # fmt: skip
    command = [sys.executable, str(SERVER), "--port", str(port), "--mode", mode, "--log", str(log)]
    for model in models:
        command += ["--model", model]
    return subprocess.Popen([*command, *extra], stdout=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout:
        process.stdout.close()


@contextlib.contextmanager
def stand_in(folder: Path, **options) -> Iterator[StandIn]:
    """Start a stand-in on a free port; stop it on the way out, whatever happens."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"requests-{len(list(folder.glob('requests-*')))}.jsonl"
    process = launch(log, **options)
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.startswith("PORT "), f"stand-in did not start: {line!r}"
        yield StandIn(process, int(line.split()[1]), log)
    finally:
        stop(process)


def point_at(registry: Path, name: str, port: int) -> None:
    """Edit the registry copy's curated entry to serve from 127.0.0.1:port."""
    path = registry / CURATED
    entries = read_json(path)
    (entry,) = [e for e in entries if e["name"] == name]
    entry["backend_config"]["host"] = "127.0.0.1"
    entry["backend_config"]["port"] = port
    write_json(path, entries)


def set_args(name: str, port: int) -> list[str]:
    """CLI words that point ``name`` at the stand-in for one run (never saved)."""
    return [
        "--set",
        f"{name}.backend_config.port={port}",
        "--set",
        f"{name}.backend_config.host=127.0.0.1",
    ]


def add_ollama_vision_entry(registry: Path) -> None:
    """A vision model served by Ollama on 127.0.0.1 with no port of its own, so
    its endpoint comes from ``backends.ollama.port`` as for a real Ollama."""
    path = registry / CURATED
    entries = read_json(path)
    entries.append(
        {
            "name": OLLAMA_VL,
            "backend": "ollama",
            "backend_config": {"host": "127.0.0.1", "model_path": f"ollama:/{OLLAMA_VL_TAG}"},
            "capabilities": {"text": True, "vision": True},
            "served_model_id": OLLAMA_VL_TAG,
        }
    )
    write_json(path, entries)


def image_bytes(fmt: str, rgb: tuple[int, int, int], size: int = 32) -> bytes:
    """A solid-colour image in ``fmt`` (PNG, JPEG, WEBP, GIF), made by Pillow."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buffer, format=fmt)
    return buffer.getvalue()
