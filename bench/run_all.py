"""Run every benchmark and print one table: path, floor, median ratio (min-max), target.

    uv run --group bench python bench/run_all.py [--quick] [--dir DIR]

Each benchmark runs as its own process (its output is shown as it goes) and
writes its rows as JSON; the table at the end collects them. A ratio is our
time over the floor's, measured in the same run, interleaved; the median and
the range are over the runs. ``--quick`` uses small files (0.25 GiB instead of
1 and 4 GiB) and fewer runs. The DVC comparison needs the ``bench`` group
(``uv run --group bench ...``); without it that row is left out.
``bench/bench_import_ollama.py`` runs too when it exists.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def plan(quick: bool, folder: list[str]) -> list[list[str]]:
    runs = "3" if quick else "7"
    big, hashed = ("0.25", "0.25") if quick else ("1", "4")
    benches = [
        ["bench_registry.py", "--runs", runs],
        ["bench_select.py", "--runs", runs],
        ["bench_pipeline.py", "--runs", runs, "--entries", "200", "--skip-first-run"],
        ["bench_pipeline.py", "--runs", "3", "--entries", "1000", "--skip-first-run"],
        ["bench_first_run.py", "--runs", "1" if quick else "3", "--big-gib", big, *folder],
        ["bench_hashing.py", "--runs", "3", "--size-gib", hashed, *folder],
    ]
    if (BENCH / "bench_import_ollama.py").exists():
        benches.append(["bench_import_ollama.py"])
    return benches


def run(bench: list[str], out: Path) -> list[dict]:
    script = BENCH / bench[0]
    print(f"\n=== {' '.join(bench)}", flush=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run([sys.executable, str(script), *bench[1:], "--json", str(out)], env=env)
    if proc.returncode != 0 or not out.exists():
        print(f"{bench[0]} failed (exit {proc.returncode})", flush=True)
        return [{"path": bench[0], "floor": "-", "values": [], "target": "failed", "limit": None}]
    rows = json.loads(out.read_text())
    out.unlink()
    return rows


def cell(row: dict) -> str:
    values = row["values"]
    if not values:
        return "-"
    unit = row.get("unit", "x")
    median = statistics.median(values)
    suffix = "x" if unit == "x" else f" {unit}"
    return f"{median:.2f}{suffix} ({min(values):.2f}-{max(values):.2f})"


def verdict(row: dict) -> str:
    if row.get("limit") is None or not row["values"]:
        return ""
    return "ok" if statistics.median(row["values"]) <= row["limit"] else "MISSED"


def table(rows: list[dict]) -> str:
    head = ("path", "floor", "median (min-max)", "target", "")
    lines = [head] + [(r["path"], r["floor"], cell(r), r["target"], verdict(r)) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]

    def fmt(line: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(lines[0]), rule, *map(fmt, lines[1:])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small files, fewer runs")
    parser.add_argument("--dir", help="where the big files go (on disk, not /dev/shm)")
    parser.add_argument("--only", help="comma-separated script names to run")
    args = parser.parse_args()
    folder = ["--dir", args.dir] if args.dir else []
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        for index, bench in enumerate(plan(args.quick, folder)):
            if args.only and bench[0] not in args.only.split(","):
                continue
            rows += run(bench, Path(tmp) / f"{index}.json")
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(table(rows))


if __name__ == "__main__":
    main()
