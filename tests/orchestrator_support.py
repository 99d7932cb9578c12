"""Fixtures for the orchestrator tests: a demo registry whose vLLM entries
point at small model folders, a free port, a state file under tmp_path, and
the stand-in vLLM started through the orchestrator's own launch command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import DEMO_REGISTRY, ROOT, Result, copy_registry, run_cli
from process_support import command_line, kill_marked, marked_processes

STANDIN = ROOT / "tests" / "servers" / "vllm_standin.py"
FAKE_LAUNCHERS = ROOT / "tests" / "servers" / "fake_launchers.py"
CHAT_PROXY = ROOT / "tests" / "servers" / "chat_proxy_standin.py"
CASE_MARKER = "IMAGEWORKS_LOADER_TEST_CASE"
FLORENCE = "florence-2-large_(FP16)"
QWEN = "qwen2.5-vl-7b-instruct_(AWQ)"
OLLAMA_ENTRY = "llama3.1_8b_(Q5_K_M)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def standin_command() -> str:
    """``orchestrator.command`` as a Hydra override: vLLM's arguments, the stand-in's script."""
    words = ["{python}", str(STANDIN), "--model", "{model_path}", "--host", "{host}"]
    words += ["--port", "{port}", "--served-model-name", "{served_id}"]
    return "orchestrator.command=[" + ",".join(f"'{w}'" for w in words) + "]"


def fake_command(mode: str) -> str:
    """``orchestrator.command`` running one of ``tests/servers/fake_launchers.py``'s modes."""
    words = ["{python}", str(FAKE_LAUNCHERS), mode, "--model", "{model_path}"]
    words += ["--port", "{port}", "--served-model-name", "{served_id}"]
    return "orchestrator.command=[" + ",".join(f"'{w}'" for w in words) + "]"


def make_models(root: Path) -> Path:
    florence = root / "microsoft" / "Florence-2-large"
    qwen = root / "Qwen" / "Qwen2.5-VL-7B-Instruct-AWQ"
    for folder, length in ((florence, 2048), (qwen, 32768)):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"max_position_embeddings": length}))
    (qwen / "chat_template.json").write_text('{"chat_template": "{{ messages }}"}')
    return root


def _default_signals() -> None:
    """Start the CLI as a terminal would: a test run under nohup or as a
    background job inherits SIGHUP/SIGINT ignored, and the CLI rightly keeps
    an inherited disposition."""
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


@dataclass
class Orchestra:
    """One test's orchestrator world; ``cli`` runs the real command line in it."""

    registry: Path
    models: Path
    state_file: Path
    port: int
    overrides: list[str] = field(default_factory=list)

    def cli(self, command: str, *args: str, env: dict[str, str] | None = None) -> Result:
        """The test's own ``args`` come after the fixture's overrides, so they win."""
        return run_cli(command, *self.overrides, *args, env=env)

    def popen_cli(
        self, command: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        cli = Path(sys.executable).parent / "imageworks-loader"
        return subprocess.Popen(
            [str(cli), command, *self.overrides, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            preexec_fn=_default_signals,
        )

    def state(self) -> dict | None:
        if not self.state_file.exists():
            return None
        return json.loads(self.state_file.read_text())

    def write_state(self, **fields) -> dict:
        state = {
            "logical_name": FLORENCE,
            "served_model_id": FLORENCE,
            "port": self.port,
            "pid": 1,
            "started_at": time.time(),
        }
        state.update(fields)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state))
        return state

    def live(self) -> list[int]:
        """Live processes started during this test."""
        return marked_processes(CASE_MARKER, os.environ[CASE_MARKER])

    def live_servers(self) -> list[int]:
        """``live()`` without the servers' log writers (each ends with its server)."""
        return [pid for pid in self.live() if "logwriter.py" not in command_line(pid)]

    def config(self):
        from loader.config import load_config

        return load_config(self.overrides)


def orchestra_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Orchestra]:
    """The body of each orchestrator test module's ``orchestra`` fixture."""
    registry = copy_registry(DEMO_REGISTRY, tmp_path / "registry", snapshot=False)
    models = make_models(tmp_path / "models")
    state_file = tmp_path / "run" / "active_vllm.json"
    case = f"{os.getpid()}-{tmp_path.name}-{os.urandom(3).hex()}"
    monkeypatch.setenv("IMAGEWORKS_REGISTRY_DIR", str(registry))
    monkeypatch.setenv("IMAGEWORKS_MODEL_ROOT", str(models))
    # The state file's location through its environment variable, as users set it.
    monkeypatch.setenv("IMAGEWORKS_VLLM_STATE_FILE", str(state_file))
    monkeypatch.setenv(CASE_MARKER, case)
    monkeypatch.delenv("VLLM_STANDIN_MODE", raising=False)
    port = free_port()
    overrides = [f"orchestrator.port={port}", standin_command(), "orchestrator.start_timeout_s=60"]
    # The real 2 s pause before starting a server after stopping one proves
    # nothing here (tests/test_orchestrator_launch.py checks its default).
    overrides.append("orchestrator.restart_backoff_s=0")
    began = time.time()
    yield Orchestra(registry, models, state_file, port, overrides)
    # Even when the test failed: end every process it started, then say so.
    kill_marked(CASE_MARKER, case)
    remove_empty_cgroups(since=began)


def remove_empty_cgroups(since: float) -> None:
    """The servers' cgroups made since ``since`` that are empty now (a server
    the test left running was killed above, not stopped, so nothing removed
    its cgroup; ``rmdir`` refuses one that still holds a process)."""
    from loader.orchestrator import cgroup

    parent, _ = cgroup.own_cgroup()
    if parent is None:
        return
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            if entry.name.startswith(cgroup.PREFIX) and entry.stat().st_mtime >= since - 1:
                with contextlib.suppress(OSError):
                    os.rmdir(entry.path)


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def group_alive(pgid: int) -> list[int]:
    """Live members of a process group."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            members.append(int(entry.name))
    return members


def start_ticks(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2 :].split()[19])
