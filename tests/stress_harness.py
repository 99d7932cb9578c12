"""Crash and concurrency harness shared by the suite's seeded tests and the
bench/ stress scripts (which run the same trials at full size).

Everything here drives the real ``imageworks-loader`` executable as separate
processes against a real registry folder, and checks the files afterwards.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CLI = Path(sys.executable).parent / "imageworks-loader"
CURATED = "model_registry.curated.json"
DISCOVERED = "model_registry.discovered.json"
SNAPSHOT = "model_registry.json"
WRITE_OPS = ("lock", "unlock", "verify")


def build_registry(folder: Path, entries: int) -> list[str]:
    """A registry of ``entries`` models sharing one small model folder; the
    discovered layer already holds half of them. Returns the names."""
    models = folder.parent / f"{folder.name}-model"
    models.mkdir(parents=True, exist_ok=True)
    (models / "config.json").write_text('{"a": 1}\n')
    (models / "weights.bin").write_bytes(bytes(range(256)) * 64)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"model-{i:03d}_(Q4)" for i in range(entries)]
    curated = [
        {
            "name": name,
            "backend": "vllm",
            "backend_config": {"port": 24001 + i % 7, "model_path": str(models)},
            "capabilities": {"text": True, "vision": i % 3 == 0},
            "roles": ["chat"],
            "metadata": {"notes": "x" * 200},
        }
        for i, name in enumerate(names)
    ]
    # Recorded artifacts make the discovered layer realistically large
    # (~0.5 MB at 200 entries), so a kill can land in the middle of a write.
    files = [{"path": f"shard-{j:02d}.safetensors", "sha256": f"{j:064x}"} for j in range(40)]
    discovered = [
        {
            "name": name,
            "artifacts": {"aggregate_sha256": "", "files": files},
            "version_lock": {"locked": False},
            "performance": {"rolling_samples": 0},
        }
        for name in names[::2]
    ]
    for file, layer in ((CURATED, curated), (DISCOVERED, discovered)):
        (folder / file).write_text(json.dumps(layer, indent=2) + "\n", encoding="utf-8")
    return names


def registry_env(folder: Path) -> dict[str, str]:
    # The folder through the environment, not an override: the composed config
    # is then cached across commands (an override is part of its cache key).
    return {**os.environ, "IMAGEWORKS_REGISTRY_DIR": str(folder)}


def cli(folder: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, timeout=timeout, env=registry_env(folder)
    )


def temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".tmp"))


def layer_problems(folder: Path, names: list[str], curated_bytes: bytes) -> list[str]:
    """What is wrong with the files: curated changed, a layer that does not
    parse (corrupt or half-written), or an entry gone missing."""
    problems = []
    if (folder / CURATED).read_bytes() != curated_bytes:
        problems.append("curated layer changed")
    for file in (DISCOVERED, SNAPSHOT):
        path = folder / file
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_bytes())
        except ValueError as exc:
            problems.append(f"{file}: does not parse ({exc})")
            continue
        if not isinstance(data, list):
            problems.append(f"{file}: not a list")
            continue
        seen = [e.get("name") for e in data]
        if len(seen) != len(set(seen)):
            problems.append(f"{file}: duplicate names")
        if file == SNAPSHOT and sorted(seen) != sorted(names):
            problems.append(f"{file}: {len(seen)} entries, expected {len(names)}")
    return problems


@dataclass
class KillReport:
    trials: int = 0
    killed_mid_run: int = 0
    corrupt: list[str] = field(default_factory=list)
    temps_after_next: int = 0
    temps_seen: int = 0


def typical_write_seconds(folder: Path, names: list[str]) -> float:
    """How long one write command takes here and now (the median of three)."""
    times = []
    for name in names[:3]:
        started = time.monotonic()
        cli(folder, "lock", name)
        times.append(time.monotonic() - started)
    return sorted(times)[1]


def kill_trials(
    folder: Path, names: list[str], trials: int, seed: int, max_delay: float | None = None
) -> KillReport:
    """``kill -9`` a lock/unlock/verify at a random moment, ``trials`` times;
    after each, the files must parse and the next write must leave no temp file.
    Kills fall uniformly within ``max_delay`` seconds of the start (default:
    the typical length of a write command here, measured first and then
    followed as the machine's load changes)."""
    recent = [max_delay or typical_write_seconds(folder, names)] * 3
    rng = random.Random(seed)
    curated = (folder / CURATED).read_bytes()
    report = KillReport()
    for _ in range(trials):
        op, name = rng.choice(WRITE_OPS), rng.choice(names)
        proc = subprocess.Popen(
            [str(CLI), op, name],
            env=registry_env(folder),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0, max_delay or sorted(recent[-5:])[len(recent[-5:]) // 2]))
        if proc.poll() is None:
            report.killed_mid_run += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        report.trials += 1
        report.temps_seen += len(temp_files(folder))
        report.corrupt += layer_problems(folder, names, curated)
        # The next command, a locked write, must clean up after the dead one.
        started = time.monotonic()
        follow = cli(folder, rng.choice(("lock", "unlock")), rng.choice(names))
        recent.append(time.monotonic() - started)
        if follow.returncode != 0:
            report.corrupt.append(f"next command failed: {follow.stderr.strip()}")
        report.temps_after_next += len(temp_files(folder))
    return report


@dataclass
class WriterReport:
    writes: int = 0
    failed_writes: list[str] = field(default_factory=list)
    lost_updates: list[str] = field(default_factory=list)
    reads: int = 0
    failed_reads: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def writes_per_s(self) -> float:
        return self.writes / self.seconds if self.seconds else 0.0


def concurrent_writers(
    folder: Path, names: list[str], writers: int, ops: int, readers: int, seed: int
) -> WriterReport:
    """``writers`` threads each run ``ops`` lock/unlock commands on entries of
    their own (so every final state is known), beside ``readers`` loops of
    ``list``/``select``; then every entry's lock state must be the last one
    written (no lost update) and every read must have succeeded."""
    report = WriterReport()
    expected: dict[str, bool] = {}
    mutex = threading.Lock()
    done = threading.Event()

    def write_loop(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        own = names[index::writers]
        for _ in range(ops):
            name, op = rng.choice(own), rng.choice(("lock", "unlock"))
            result = cli(folder, op, name)
            with mutex:
                report.writes += 1
                if result.returncode != 0:
                    report.failed_writes.append(result.stderr.strip()[-300:])
                else:
                    expected[name] = op == "lock"

    def read_loop(index: int) -> None:
        rng = random.Random(seed * 7 + index)
        while not done.is_set():
            args = ("list",) if rng.random() < 0.5 else ("select", rng.choice(names))
            result = cli(folder, *args)
            problem = ""
            if result.returncode != 0:
                problem = result.stderr.strip()[-300:]
            else:
                try:
                    data = json.loads(result.stdout)
                    if args[0] == "list" and len(data) != len(names):
                        problem = f"list gave {len(data)} rows"
                except ValueError as exc:
                    problem = f"bad JSON: {exc}"
            with mutex:
                report.reads += 1
                if problem:
                    report.failed_reads.append(problem)

    started = time.monotonic()
    write_threads = [threading.Thread(target=write_loop, args=(i,)) for i in range(writers)]
    read_threads = [threading.Thread(target=read_loop, args=(i,)) for i in range(readers)]
    for thread in write_threads + read_threads:
        thread.start()
    for thread in write_threads:
        thread.join()
    report.seconds = time.monotonic() - started
    done.set()
    for thread in read_threads:
        thread.join()
    final = {row["name"]: row["locked"] for row in json.loads(cli(folder, "list").stdout)}
    report.lost_updates = [n for n, locked in expected.items() if final.get(n) != locked]
    return report


def hold_registry_lock(folder: Path) -> subprocess.Popen:
    """Another process holding the registry lock until killed."""
    code = (
        "import sys, time\nfrom loader.registry.layers import registry_lock\n"
        "from pathlib import Path\n"
        "with registry_lock(Path(sys.argv[1])):\n    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True
    )
    if proc.stdout.readline().strip() != "held":
        proc.kill()
        proc.wait()
        raise RuntimeError("lock holder did not start")
    return proc


def release(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=30)
    if proc.stdout:
        proc.stdout.close()


def drop_snapshot(folder: Path) -> None:
    """Make the next read find the snapshot stale (so it would refresh it)."""
    (folder / SNAPSHOT).unlink(missing_ok=True)
