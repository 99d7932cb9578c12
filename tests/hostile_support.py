"""The hostile-server family's harness: ``servers/hostile.py`` as a real
process, the loader run against it as a real process, and what each case
asserts (time bound, one line, exit code, registry bytes, peak memory, no
process left)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from process_support import kill_marked, wait_until_none_marked

SERVER = Path(__file__).resolve().parent / "servers" / "hostile.py"
CASE_MARKER = "IMAGEWORKS_HOSTILE_CASE"

# Each live call's total deadline in these cases, and what a run may add to it
# (starting Python, loading the registry) on a loaded two-core machine.
DEADLINE_S = 2
SLACK_S = 12
# The answer size cap in these cases, and the peak memory a run may reach.
CAP_BYTES = 1024 * 1024
PEAK_RSS_MB = 300


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    peak_rss_mb: float

    def lines(self) -> list[str]:
        return self.stderr.strip().splitlines()


class Case:
    """One case: a marker every process it starts carries, so the test can
    prove that none is left behind."""

    def __init__(self) -> None:
        self.marker = uuid.uuid4().hex
        self.env = {**os.environ, CASE_MARKER: self.marker}
        self.env.pop("OLLAMA_HOST", None)
        self.env.pop("IMAGEWORKS_OLLAMA_HOST", None)
        self.env["OLLAMA_MODELS"] = "/nonexistent-ollama-models"

    @contextlib.contextmanager
    def server(self, mode: str = "normal", *options: str, life: float = 90) -> Iterator[str]:
        """Start the hostile server; yields its base URL; stops it on the way out."""
        process = subprocess.Popen(
            [sys.executable, str(SERVER), "--mode", mode, "--life", str(life), *options],
            stdout=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        try:
            line = process.stdout.readline() if process.stdout else ""
            assert line.startswith("PORT "), f"hostile server did not start: {line!r}"
            yield f"http://127.0.0.1:{int(line.split()[1])}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()

    def loader(self, *words: str, timeout: float = 90) -> Run:
        """``python -m loader WORDS`` as a real process: its output, how long it
        took, and its peak RSS (``wait4``: the kernel's own accounting)."""
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "loader", *words],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        outputs: dict[str, bytes] = {}
        readers = [
            threading.Thread(target=lambda k=k, f=f: outputs.__setitem__(k, f.read()))
            for k, f in (("out", process.stdout), ("err", process.stderr))
        ]
        for reader in readers:
            reader.start()
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                process.returncode = -9
                for reader in readers:
                    reader.join()
                raise AssertionError(
                    f"still running after {timeout} s: {outputs.get('err', b'')[-500:]!r}"
                )
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        for reader in readers:
            reader.join()
        process.stdout.close()
        process.stderr.close()
        return Run(
            process.returncode,
            outputs["out"].decode(),
            outputs["err"].decode(),
            elapsed,
            usage.ru_maxrss / 1024,
        )

    def assert_nothing_left(self) -> None:
        left = wait_until_none_marked(CASE_MARKER, self.marker, timeout=10)
        if left:
            kill_marked(CASE_MARKER, self.marker)
        assert not left, f"processes of this case left running: {left}"


def models_file(folder: Path, models: Sequence[dict]) -> Path:
    path = folder / "hostile-models.json"
    path.write_text(json.dumps({"models": list(models)}), encoding="utf-8")
    return path
