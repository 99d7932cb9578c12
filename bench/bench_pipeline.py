"""Benchmark the doit pipeline against the CLI on the same registry, in one run.

    uv run python bench/bench_pipeline.py [--runs 7] [--entries 200] [--size-gib 1] [--dir DIR]

Two measurements, each interleaving ours with its baseline, medians printed:

* no-op: a second `doit` over an N-entry registry whose entries are real model
  folders (10 files each), against `imageworks-loader list` on the same
  registry. Target: at most 1.5x.
* first run: `doit` over 4 models of SIZE GiB each (4 shards per model), with
  no doit state and no hash cache, against `imageworks-loader verify --all`
  with no hash cache. Both read every byte once; the target is at most 1.1x
  (doit's own MD5 checker would read every byte a second time).

Files are read once before every timed first run so both sides hash from the
page cache. Needs 4 x SIZE GiB free on disk; everything is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GIB = 1024**3
BLOCK = 64 * 1024 * 1024


def environment(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["IMAGEWORKS_LOADER_CACHE"] = str(cache)  # config/snapshot caches of this bench only
    env.pop("IMAGEWORKS_REGISTRY_DIR", None)
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def write_registry(folder: Path, models: dict[str, Path]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    entries = [
        {
            "name": name,
            "display_name": name,
            "backend": "vllm",
            "backend_config": {"model_path": str(path), "port": 24001},
            "roles": ["caption"] if i % 3 == 0 else ["chat"],
            "capabilities": {"text": True, "vision": i % 3 == 0},
        }
        for i, (name, path) in enumerate(models.items())
    ]
    (folder / "model_registry.curated.json").write_text(json.dumps(entries, indent=2) + "\n")
    (folder / "model_registry.discovered.json").write_text("[]\n")
    return folder


def doit_argv(registry: Path) -> list[str]:
    return [str(BIN / "doit"), "-f", str(PROJECT / "dodo.py"), f"registry.dir={registry}"]


def cli_argv(registry: Path, *args: str) -> list[str]:
    return [str(BIN / "imageworks-loader"), *args, f"registry.dir={registry}"]


ROWS: list[dict] = []  # for --json (bench/run_all.py)


def report(
    label: str, ours: list[float], base: list[float], target: float | None, *, path: str, floor: str
) -> None:
    mo, mb = statistics.median(ours), statistics.median(base)
    ratio = mo / mb
    print(f"{label}: ours median {mo:.3f} s, baseline median {mb:.3f} s")
    if target is None:
        print(f"{label}: ratio {ratio:.2f}x (the baseline is a floor, not a target)")
    else:
        verdict = "ok" if ratio <= target else "OVER TARGET"
        print(f"{label}: ratio {ratio:.2f}x (target <= {target}x) {verdict}")
    ratios = [a / b for a, b in zip(ours, base, strict=True)]
    shown = "(a floor)" if target is None else f"<= {target}x"
    ROWS.append({"path": path, "floor": floor, "values": ratios, "target": shown, "limit": target})


BARE_DODO = """\
import json, os
DEPS = json.load(open(os.path.join(os.path.dirname(__file__), "deps.json")))
DOIT_CONFIG = {"dep_file": os.path.join(os.path.dirname(__file__), "doit.sqlite3"),
               "backend": "sqlite3", "verbosity": 0}


def record(path):
    def write():
        with open(path, "w") as fh:
            fh.write("done")
    return write


def task_hash():
    for i, deps in enumerate(DEPS["models"]):
        target = os.path.join(os.path.dirname(__file__), "records", f"{i}.json")
        yield {"name": str(i), "actions": [record(target)], "file_dep": deps, "targets": [target]}


def task_verify():
    for i, _ in enumerate(DEPS["models"]):
        target = os.path.join(os.path.dirname(__file__), "records", f"{i}.json")
        yield {"name": str(i), "actions": [lambda: True], "file_dep": [target]}


def task_snapshot():
    return {"actions": [lambda: True], "file_dep": DEPS["layers"]}
"""


EMPTY_DODO = """\
import os
DOIT_CONFIG = {"dep_file": os.path.join(os.path.dirname(__file__), "doit.sqlite3"),
               "backend": "sqlite3", "verbosity": 0, "default_tasks": []}
"""


def empty_doit(work: Path) -> list[str]:
    """doit's start alone: a dodo with no task (doit imports ~70 ms of itself
    before it reads any dodo)."""
    folder = work / "empty-doit"
    folder.mkdir(parents=True)
    (folder / "dodo.py").write_text(EMPTY_DODO)
    return [str(BIN / "doit"), "-f", str(folder / "dodo.py")]


def bare_doit(work: Path, registry: Path, models: dict[str, Path]) -> list[str]:
    """doit's own floor: a dodo with the same tasks and file deps, trivial actions."""
    folder = work / "bare-doit"
    (folder / "records").mkdir(parents=True)
    deps = {
        "models": [sorted(str(p) for p in path.iterdir()) for path in models.values()],
        "layers": [str(registry / "model_registry.curated.json"),
                   str(registry / "model_registry.discovered.json")],
    }  # fmt: skip
    (folder / "deps.json").write_text(json.dumps(deps))
    (folder / "dodo.py").write_text(BARE_DODO)
    return [str(BIN / "doit"), "-f", str(folder / "dodo.py")]


def bench_noop(work: Path, entries: int, runs: int, env: dict[str, str]) -> None:
    models = {}
    for i in range(entries):
        folder = work / "weights" / f"model-{i:04d}"
        folder.mkdir(parents=True)
        for j in range(10):
            (folder / f"part-{j}.bin").write_bytes(f"{i}/{j}".encode() * 64)
        models[f"model-{i:04d}_(Q4_K_M)"] = folder
    registry = write_registry(work / "noop-registry", models)
    bare = bare_doit(work, registry, models)
    empty = empty_doit(work)
    timed(doit_argv(registry), env, work)  # the first run: hash, verify, snapshot
    timed(cli_argv(registry, "list"), env, work)
    timed(bare, env, work)
    timed(empty, env, work)
    ours, base, floor, start = [], [], [], []
    for i in range(runs):
        sides = [("doit", doit_argv(registry)), ("list", cli_argv(registry, "list"))]
        sides += [("bare", bare), ("empty", empty)]
        for name, argv in sides if i % 2 == 0 else reversed(sides):
            times = {"doit": ours, "list": base, "bare": floor, "empty": start}[name]
            times.append(timed(argv, env, work))
        print(f"  run {i + 1}: doit {ours[-1]:.3f} s, list {base[-1]:.3f} s, "
              f"bare doit {floor[-1]:.3f} s, doit with no task {start[-1]:.3f} s")  # fmt: skip
    print(f"no-op over {entries} entries, {entries * 10} file deps, {entries * 2 + 1} tasks")
    target = 1.2 if entries <= 200 else 1.5
    path = f"no-op doit, {entries} entries x 10 files"
    report("no-op doit vs list", ours, base, target, path=path, floor="list, same registry")
    report("no-op doit vs a bare doit", ours, floor, None, path=path,
           floor="bare doit, same tasks and file deps")  # fmt: skip
    # The target's own floor: doit started with nothing to load or check.
    report("a doit with no task vs list", start, base, None,
           path=f"doit with no task at all ({entries}-entry registry's list)",
           floor="list, same registry")  # fmt: skip


def write_big_model(folder: Path, size: int) -> None:
    folder.mkdir(parents=True)
    block = os.urandom(BLOCK)
    shard = size // 4
    for j in range(4):
        with open(folder / f"model-{j + 1:05d}-of-00004.safetensors", "wb") as fh:
            for _ in range(shard // BLOCK):
                fh.write(block)
            fh.write(block[: shard % BLOCK])
            fh.write(str(j).encode())  # shards differ


def warm(folders: list[Path]) -> None:
    for folder in folders:
        for path in sorted(folder.iterdir()):
            with open(path, "rb") as fh:
                while fh.read(BLOCK):
                    pass


def bench_first_run(work: Path, size_gib: float, runs: int, env: dict[str, str]) -> None:
    models = {}
    for i in range(4):
        models[f"big-{i}"] = work / "big" / f"big-{i}"
        write_big_model(models[f"big-{i}"], int(size_gib * GIB))
    registry = write_registry(work / "big-registry", models)

    def fresh() -> None:
        # no doit state, no hash cache, no recorded hashes: a first run
        shutil.rmtree(registry / ".imageworks-state", ignore_errors=True)
        for name in (".imageworks-hash-cache.json", "model_registry.json"):
            (registry / name).unlink(missing_ok=True)
        (registry / "model_registry.discovered.json").write_text("[]\n")
        warm(list(models.values()))

    ours, base = [], []
    for i in range(runs):
        pair = [("doit", doit_argv(registry)), ("verify", cli_argv(registry, "verify", "--all"))]
        for name, argv in pair if i % 2 == 0 else reversed(pair):
            fresh()
            (ours if name == "doit" else base).append(timed(argv, env, work))
        print(f"  run {i + 1}: doit {ours[-1]:.2f} s, verify --all {base[-1]:.2f} s")
    print(f"first run over 4 models of {size_gib} GiB")
    report("first doit vs verify --all", ours, base, 1.1,
           path=f"first doit, 4 models of {size_gib:g} GiB", floor="verify --all")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (not /dev/shm)")
    parser.add_argument("--skip-first-run", action="store_true")
    parser.add_argument("--json", type=Path, help="write the result rows here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-", dir=args.dir))
    try:
        env = environment(work / "cache")
        bench_noop(work, args.entries, args.runs, env)
        if not args.skip_first_run:
            bench_first_run(work, args.size_gib, max(3, args.runs // 2), env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(ROWS))


if __name__ == "__main__":
    main()
