"""How much slower than a bare ``json.load`` of the layers is ``imageworks-loader list``?

    uv run python bench/bench_registry.py [--runs 9] [--entries 1000]

Both are measured in the same run, interleaved, with the project's own
interpreter; the figures are medians. Targets (issue 14): the real fixture at
most 2.5x the bare load, 1,000 and 5,000 entries at most 1.5x, peak memory at
1,000 entries at most 64 MiB. The registries are copied or generated into a temporary folder.
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

ROOT = Path(__file__).resolve().parent.parent
# Everything comes from the repository, so the bench runs in a fresh clone alone.
FIXTURE = ROOT / "tests" / "data" / "imageworks-registry"
GENERATOR = ROOT / "bench" / "gen_registry.py"
PYTHON = Path(sys.executable)
CLI = PYTHON.parent / "imageworks-loader"

BARE = "import json, sys\nfor p in sys.argv[1:]:\n    with open(p) as f: json.load(f)\n"


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}")
    return elapsed, usage.ru_maxrss / 1024


def measure(
    label: str, folder: Path, runs: int, env: dict[str, str], *, edit_layer: bool = False
) -> dict[str, float]:
    """``edit_layer``: change one value in the discovered layer before each
    run (untimed), so every load is the first after an edit: it merges the
    layers and rewrites the snapshot instead of reading the confirmed one."""
    discovered = folder / "model_registry.discovered.json"
    layers = [str(folder / "model_registry.curated.json"), str(discovered)]
    bare_cmd = [str(PYTHON), "-c", BARE, *layers]
    ours_cmd = [str(CLI), "list", f"registry.dir={folder}"]
    run_once(ours_cmd, env)  # warm: config cache, snapshot refresh, page cache
    run_once(bare_cmd, env)
    bare, ours, rss = [], [], []
    for _ in range(runs):
        bare.append(run_once(bare_cmd, env)[0])
        if edit_layer:
            entries = json.loads(discovered.read_text(encoding="utf-8"))
            entries[0]["performance"]["rolling_samples"] += 1
            discovered.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        seconds, peak = run_once(ours_cmd, env)
        ours.append(seconds)
        rss.append(peak)
    result = {
        "bare_s": statistics.median(bare),
        "ours_s": statistics.median(ours),
        "peak_mib": max(rss),
        "ratios": [a / b for a, b in zip(ours, bare, strict=True)],
    }
    result["ratio"] = result["ours_s"] / result["bare_s"]
    print(
        f"{label:<24} bare {result['bare_s'] * 1000:7.1f} ms"
        f"   list {result['ours_s'] * 1000:7.1f} ms"
        f"   ratio {result['ratio']:5.2f}x   peak {result['peak_mib']:6.1f} MiB"
    )
    return result


def row(path: str, result: dict, target: str, limit: float | None) -> dict:
    return {
        "path": path,
        "floor": "bare json.load of the layers",
        "values": result["ratios"],
        "target": target,
        "limit": limit,
        "peak_mib": result["peak_mib"],
    }


def measure_completion(folder: Path, runs: int, env: dict[str, str]) -> dict[str, float]:
    """A TAB on a model name runs ``imageworks-loader __complete-names``; the
    floor for any completer written in Python is the interpreter's start."""
    names_cmd = [str(CLI), "__complete-names", "bash", "q"]
    floor_cmd = [str(PYTHON), "-c", "pass"]
    named = dict(env, IMAGEWORKS_REGISTRY_DIR=str(folder))
    run_once(names_cmd, named)
    floor, names = [], []
    for _ in range(runs):
        floor.append(run_once(floor_cmd, named)[0])
        names.append(run_once(names_cmd, named)[0])
    result = {"floor_s": statistics.median(floor), "names_s": statistics.median(names)}
    result["ratio"] = result["names_s"] / result["floor_s"]
    print(
        f"{'name completion':<24} python -c pass {result['floor_s'] * 1000:6.1f} ms"
        f"   names {result['names_s'] * 1000:6.1f} ms   ratio {result['ratio']:5.2f}x"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--large", type=int, default=5000, help="a larger registry (0: skip)")
    parser.add_argument("--json", type=Path, help="write the result rows here")
    args = parser.parse_args()

    env = dict(os.environ)
    # Measure what a user sees: bytecode is cached as usual.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        env["IMAGEWORKS_LOADER_CACHE"] = str(Path(tmp) / "cache")
        fixture = Path(tmp) / "fixture"
        fixture.mkdir()
        for path in FIXTURE.glob("*.json"):
            shutil.copyfile(path, fixture / path.name)
        generated = Path(tmp) / f"gen{args.entries}"
        subprocess.run(
            [str(PYTHON), str(GENERATOR), str(args.entries), str(generated)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"median of {args.runs} interleaved runs; interpreter {PYTHON}")
        real = measure("real fixture (16)", fixture, args.runs, env)
        big = measure(f"generated ({args.entries})", generated, args.runs, env)
        edited = measure("  after a layer edit", generated, args.runs, env, edit_layer=True)
        completion = measure_completion(generated, args.runs, env)
        large = None
        if args.large:
            folder = Path(tmp) / f"gen{args.large}"
            subprocess.run(
                [str(PYTHON), str(GENERATOR), str(args.large), str(folder)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            large = measure(f"generated ({args.large})", folder, max(3, args.runs // 2), env)
    print(
        f"targets: fixture <= 2.5x: {'ok' if real['ratio'] <= 2.5 else 'MISSED'}; "
        f"{args.entries} entries <= 1.5x: {'ok' if big['ratio'] <= 1.5 else 'MISSED'}; "
        f"peak <= 64 MiB: {'ok' if big['peak_mib'] <= 64 else 'MISSED'}"
    )
    rows = [
        row("list, real fixture (16 entries)", real, "<= 2.5x", 2.5),
        row(f"list, {args.entries} entries", big, "<= 1.5x, <= 64 MiB", 1.5),
        row(f"first list after a layer edit, {args.entries} entries", edited, "(none)", None),
    ]
    if large is not None:
        rows.append(row(f"list, {args.large} entries", large, "<= 1.5x", 1.5))
        growth = large["peak_mib"] / big["peak_mib"]
        print(
            f"peak RSS {big['peak_mib']:.0f} MiB at {args.entries} entries, "
            f"{large['peak_mib']:.0f} MiB at {args.large} ({growth:.1f}x for "
            f"{args.large / args.entries:.0f}x the entries)"
        )
    if args.json:
        args.json.write_text(json.dumps(rows))
    print(
        f"first list after a layer edit (layers merged, snapshot rewritten): "
        f"{edited['ratio']:.2f}x, "
        f"peak {edited['peak_mib']:.1f} MiB"
    )
    print(
        f"completing a model name ({args.entries} entries): "
        f"{completion['names_s'] * 1000:.0f} ms, "
        f"{completion['ratio']:.2f}x a bare interpreter start"
    )


if __name__ == "__main__":
    main()
