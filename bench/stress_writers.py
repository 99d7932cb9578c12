"""8 writers x 100 operations beside 2 reader loops (issue 11's concurrency figure).

    uv run python bench/stress_writers.py [--writers 8] [--ops 100] [--readers 2] [--seed 11]

Each writer runs ``--ops`` lock/unlock commands on entries of its own, so the
final state of every entry is known; the readers run ``list``/``select`` until
the writers finish. Then it counts lost updates and failed reads, and measures
the write throughput of one writer alone (same registry, ``--ops`` commands,
no readers) as the baseline. Exits 1 on any lost update or failed read.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from stress_harness import build_registry, cli, concurrent_writers  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--ops", type=int, default=100)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stress-writers-") as tmp:
        folder = Path(tmp) / "reg"
        names = build_registry(folder, args.entries)
        cli(folder, "list")
        alone = concurrent_writers(folder, names, 1, args.ops, 0, args.seed)
        crowd = concurrent_writers(
            folder, names, args.writers, args.ops, args.readers, args.seed + 1
        )
    print(
        f"{args.writers} writers x {args.ops} ops + {args.readers} reader loops, seed {args.seed}"
    )
    print(
        f"writes: {crowd.writes} ({len(crowd.failed_writes)} failed), lost updates: "
        f"{len(crowd.lost_updates)}"
    )
    print(f"reads: {crowd.reads}, failed reads: {len(crowd.failed_reads)}")
    print(
        f"throughput: {crowd.writes_per_s:.2f} writes/s together; one writer alone "
        f"{alone.writes_per_s:.2f} writes/s ({alone.writes} ops); ratio "
        f"{crowd.writes_per_s / alone.writes_per_s:.2f}"
    )
    for problem in (crowd.failed_writes + crowd.failed_reads + crowd.lost_updates)[:10]:
        print(f"  {problem}")
    bad = crowd.lost_updates or crowd.failed_reads or crowd.failed_writes or alone.lost_updates
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
