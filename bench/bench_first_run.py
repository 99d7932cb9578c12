"""The first pipeline run: linear in the number of models, and against DVC.

    uv run python bench/bench_first_run.py [--models 50,200,1000] [--runs 3]
    uv run --group bench python bench/bench_first_run.py --big-gib 1 [--dir DIR]

Two measurements, each in one run:

* growth: a first ``doit`` (no doit state, no hash cache) over N models of 10
  small files each, for each N of ``--models``; printed per model, and as the
  ratio of each N's per-model time to the smallest N's (1.0 is linear; the
  old one-save-per-model runs were quadratic: 1.6 s, 16 s, 470 s at 50, 200
  and 1,000 models).
* against DVC (``--big-gib``; DVC from the optional ``bench`` dependency
  group): 200 models of 10 small files plus 4 models of one ``--big-gib``
  file each. The first ``doit`` against ``dvc add --no-commit`` of the same
  folders (DVC hashes them and writes its .dvc files; target <= 1.0x) and
  against our own ``verify --all`` with no hash cache (target <= 1.2x). Files
  are read before each timed command so every side hashes from the page
  cache. Needs 4 x ``--big-gib`` GiB free on disk.
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
    env["IMAGEWORKS_LOADER_CACHE"] = str(cache)
    env.pop("IMAGEWORKS_REGISTRY_DIR", None)
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def small_models(root: Path, count: int) -> dict[str, Path]:
    models = {}
    for i in range(count):
        folder = root / f"model-{i:04d}"
        folder.mkdir(parents=True)
        for j in range(10):
            (folder / f"part-{j}.bin").write_bytes(f"{i}/{j}".encode() * 512)
        models[f"model-{i:04d}_(Q4_K_M)"] = folder
    return models


def write_registry(folder: Path, models: dict[str, Path]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    entries = [
        {
            "name": name,
            "display_name": name,
            "backend": "vllm",
            "backend_config": {"model_path": str(path), "port": 24001},
            "capabilities": {"text": True},
        }
        for name, path in models.items()
    ]
    (folder / "model_registry.curated.json").write_text(json.dumps(entries, indent=2) + "\n")
    (folder / "model_registry.discovered.json").write_text("[]\n")
    return folder


def fresh(registry: Path) -> None:
    """No doit state, no hash cache, no recorded hashes: a first run."""
    shutil.rmtree(registry / ".imageworks-state", ignore_errors=True)
    for name in (".imageworks-hash-cache.json", "model_registry.json"):
        (registry / name).unlink(missing_ok=True)
    (registry / "model_registry.discovered.json").write_text("[]\n")


def doit_argv(registry: Path) -> list[str]:
    return [str(BIN / "doit"), "-f", str(PROJECT / "dodo.py"), f"registry.dir={registry}"]


def growth(work: Path, sizes: list[int], runs: int, env: dict[str, str]) -> list[dict]:
    per_model: dict[int, list[float]] = {}
    for count in sizes:
        registry = write_registry(work / f"reg-{count}", small_models(work / f"w-{count}", count))
        per_model[count] = []
        for _ in range(runs):
            fresh(registry)
            seconds = timed(doit_argv(registry), env, work)
            per_model[count].append(seconds / count)
        median = statistics.median(per_model[count])
        print(f"first doit, {count:5d} models x 10 files: {median * count:7.2f} s, "
              f"{median * 1000:6.2f} ms a model")  # fmt: skip
    base = statistics.median(per_model[sizes[0]])
    rows = []
    for count in sizes[1:]:
        ratios = [t / base for t in per_model[count]]
        print(f"  per-model time at {count} / at {sizes[0]}: {statistics.median(ratios):.2f} "
              "(1.0 = linear)")  # fmt: skip
        rows.append(
            {
                "path": f"first doit, {count} models x 10 files (per model)",
                "floor": f"per model at {sizes[0]} models",
                "values": ratios,
                "target": "<= 1.5x (linear)",
                "limit": 1.5,
            }
        )
    return rows


def big_model(folder: Path, size: int) -> None:
    folder.mkdir(parents=True)
    block = os.urandom(BLOCK)
    with open(folder / "model.safetensors", "wb") as fh:
        for _ in range(size // BLOCK):
            fh.write(block)
        fh.write(block[: size % BLOCK])
        fh.write(folder.name.encode())


def warm(folders: list[Path]) -> None:
    for folder in folders:
        for path in sorted(folder.iterdir()):
            with open(path, "rb") as fh:
                while fh.read(BLOCK):
                    pass


def against_dvc(work: Path, big_gib: float, runs: int, env: dict[str, str]) -> list[dict]:
    dvc = shutil.which("dvc", path=str(BIN))
    models = small_models(work / "tree" / "small", 200)
    for i in range(4):
        models[f"big-{i}"] = work / "tree" / "big" / f"big-{i}"
        big_model(models[f"big-{i}"], int(big_gib * GIB))
    registry = write_registry(work / "dvc-registry", models)
    folders = list(models.values())
    tree = work / "tree"
    verify = [str(BIN / "imageworks-loader"), "verify", "--all", f"registry.dir={registry}"]
    times: dict[str, list[float]] = {"doit": [], "dvc": [], "verify": []}
    for i in range(runs):
        sides = ["doit", "verify"] + (["dvc"] if dvc else [])
        for side in sides if i % 2 == 0 else reversed(sides):
            fresh(registry)
            if side == "dvc":
                shutil.rmtree(tree / ".dvc", ignore_errors=True)
                for stale in tree.rglob("*.dvc"):
                    stale.unlink()
                timed([dvc, "init", "--no-scm", "-q"], env, tree)
                argv = [dvc, "add", "--no-commit", "-q", *map(str, folders)]
            else:
                argv = doit_argv(registry) if side == "doit" else verify
            warm(folders)
            times[side].append(timed(argv, env, tree if side == "dvc" else work))
        shown = ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items() if v)
        print(f"  run {i + 1}: {shown}")
    rows = []
    if dvc:
        rows.append(
            {
                "path": f"first doit, 200 small + 4 x {big_gib:g} GiB models",
                "floor": "dvc add --no-commit",
                "values": [a / b for a, b in zip(times["doit"], times["dvc"], strict=True)],
                "target": "<= 1.0x",
                "limit": 1.0,
            }
        )
    else:
        print("dvc not installed (uv run --group bench ...): the DVC side is skipped")
    rows.append(
        {
            "path": f"first doit, 200 small + 4 x {big_gib:g} GiB models",
            "floor": "verify --all (no hash cache)",
            "values": [a / b for a, b in zip(times["doit"], times["verify"], strict=True)],
            "target": "<= 1.2x",
            "limit": 1.2,
        }
    )
    for row in rows:
        print(f"{row['path']} vs {row['floor']}: {statistics.median(row['values']):.2f}x "
              f"(target {row['target']})")  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="50,200,1000", help="model counts for the growth")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big-gib", type=float, default=0.0, help="0: skip the DVC comparison")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (not /dev/shm)")
    parser.add_argument("--json", type=Path, help="write the result rows here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-first-run-", dir=args.dir))
    try:
        env = environment(work / "cache")
        sizes = [int(n) for n in args.models.split(",")]
        rows = growth(work, sizes, args.runs, env)
        if args.big_gib > 0:
            rows += against_dvc(work, args.big_gib, args.runs, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
