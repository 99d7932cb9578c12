"""How long does ``select_model(name)`` take, warm, in a long-running process?

    uv run python bench/bench_select.py [--calls 20000] [--runs 7] [--json OUT]

A chat proxy calls it per request. Each call checks that the registry is
still fresh (a stat of the two layer files, so an edit saved before the call
is seen) and answers from an index built once per loaded registry. Measured
on a copy of the real fixture (``tests/data/imageworks-registry``), with and
without a required capability. Target (issue 14): at most 10 us a call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "imageworks-registry"
NAME = "qwen2.5-vl-7b-instruct_(AWQ)"


def per_call_us(call, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the result rows here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-select-") as tmp:
        os.environ["IMAGEWORKS_LOADER_CACHE"] = str(Path(tmp) / "cache")
        folder = Path(tmp) / "fixture"
        shutil.copytree(FIXTURE, folder)
        sys.path.insert(0, str(ROOT))
        from loader.config import load_config
        from loader.registry.core import Registry
        from loader.registry.service import select_model

        registry = Registry(load_config([f"registry.dir={folder}"]))
        select_model(NAME, ["vision"], registry=registry)  # load and build the index
        plain, vision = [], []
        for _ in range(args.runs):
            plain.append(per_call_us(lambda: select_model(NAME, registry=registry), args.calls))
            vision.append(
                per_call_us(lambda: select_model(NAME, ["vl"], registry=registry), args.calls)
            )
    rows = [
        {"path": "select_model(name), warm", "values": plain},
        {"path": "select_model(name, ['vl']), warm", "values": vision},
    ]
    for row in rows:
        values = row["values"]
        print(
            f"{row['path']:<36} median {statistics.median(values):6.2f} us per call "
            f"(min {min(values):.2f}, max {max(values):.2f}; target <= 10 us)"
        )
        row.update(floor="(none)", unit="us", target="<= 10 us", limit=10.0)
    if args.json:
        args.json.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
