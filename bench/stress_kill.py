"""kill -9 at random moments during lock/unlock/verify (issue 11's crash figure).

    uv run python bench/stress_kill.py [--trials 200] [--entries 200] [--seed 11]

Each trial starts one write command on a registry of ``--entries`` models,
kills it with SIGKILL after a random delay, checks that every layer file
still parses with every entry present, then runs the next write command and
counts the temp files left behind. Prints the tallies; exits 1 if any is wrong.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from stress_harness import build_registry, cli, kill_trials  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--max-delay",
        type=float,
        default=None,
        help="kill within this many seconds of the start (default: one write's typical length)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stress-kill-") as tmp:
        folder = Path(tmp) / "reg"
        names = build_registry(folder, args.entries)
        cli(folder, "list")
        started = time.monotonic()
        report = kill_trials(folder, names, args.trials, args.seed, args.max_delay)
        elapsed = time.monotonic() - started
    unparsable = [p for p in report.corrupt if "does not parse" in p]
    other = [p for p in report.corrupt if "does not parse" not in p]
    print(f"trials: {report.trials} on {args.entries} entries, seed {args.seed}, {elapsed:.0f} s")
    print(f"killed while still running: {report.killed_mid_run}")
    print(f"half-written (a layer that does not parse): {len(unparsable)}")
    print(f"corrupt (entries lost or duplicated, curated changed, next write failed): {len(other)}")
    print(f"temp files seen right after a kill (summed): {report.temps_seen}")
    print(f"temp files left after the next command: {report.temps_after_next}")
    for problem in report.corrupt[:10]:
        print(f"  {problem}")
    return 1 if report.corrupt or report.temps_after_next else 0


if __name__ == "__main__":
    sys.exit(main())
