"""`list` while another process holds the registry lock (issue 11's contention figure).

    uv run python bench/bench_locked_list.py [--runs 9] [--entries 200]

With the snapshot out of date (so a read would refresh it), times `list`
unlocked and `list` while a separate process holds the registry lock,
interleaved, and prints medians and the ratio (target: at most 1.5x). The
unlocked run composes the layers and rewrites the snapshot; the locked one
composes them and skips the refresh with one line. Also shows `list` with a
fresh snapshot, the everyday case, for scale.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from stress_harness import (  # noqa: E402
    CLI,
    build_registry,
    drop_snapshot,
    hold_registry_lock,
    registry_env,
    release,
)


def timed_list(folder: Path) -> tuple[float, str]:
    env = registry_env(folder)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    proc = subprocess.run([str(CLI), "list"], capture_output=True, text=True, env=env, timeout=120)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"list failed: {proc.stderr}")
    return elapsed, proc.stderr.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--entries", type=int, default=200)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"unlocked": [], "locked": [], "fresh": []}
    with tempfile.TemporaryDirectory(prefix="locked-list-") as tmp:
        folder = Path(tmp) / "reg"
        build_registry(folder, args.entries)
        timed_list(folder)  # warm the config cache and the page cache
        note = ""
        for _ in range(args.runs):
            drop_snapshot(folder)
            times["unlocked"].append(timed_list(folder)[0])
            times["fresh"].append(timed_list(folder)[0])
            drop_snapshot(folder)
            holder = hold_registry_lock(folder)
            try:
                elapsed, note = timed_list(folder)
            finally:
                release(holder)
            times["locked"].append(elapsed)
    medians = {k: statistics.median(v) for k, v in times.items()}
    for key, label in (
        ("unlocked", "list, snapshot stale, lock free (refreshes it)"),
        ("locked", "list, snapshot stale, lock held elsewhere"),
        ("fresh", "list, snapshot fresh"),
    ):
        print(f"{label:50s} median {medians[key] * 1000:7.1f} ms  ({args.runs} runs)")
    print(f"locked / unlocked: {medians['locked'] / medians['unlocked']:.2f}x (target <= 1.5x)")
    print(f"stderr of a locked run: {note}")
    return 0 if medians["locked"] <= 1.5 * medians["unlocked"] else 1


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.exit(main())
