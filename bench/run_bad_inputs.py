"""Every bad-input corpus case through the real executable (issue 11's bad-input figure).

    uv run python bench/run_bad_inputs.py

The corpus is tests/data/bad_inputs/corpus.jsonl (see tests/bad_input_corpus.py).
Prints how many cases exit 1, give exactly one stderr line naming what is
wrong, print nothing on stdout and change no file; exits 1 if any does not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bad_input_corpus import environment, fingerprint, load_cases, materialize, problems  # noqa: E402

CLI = Path(sys.executable).parent / "imageworks-loader"


def main() -> int:
    cases = load_cases()
    failures: list[tuple[str, list[str]]] = []
    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as tmp:
        for case in cases:
            base = Path(tmp) / case["id"]
            folder, args = materialize(case, base)
            before = fingerprint(folder)
            env = {**os.environ, **environment(folder)}
            proc = subprocess.run(
                [str(CLI), *args], capture_output=True, text=True, env=env, timeout=120
            )
            found = problems(
                case, proc.returncode, proc.stdout, proc.stderr, before, fingerprint(folder)
            )
            if found:
                failures.append((case["id"], found))
    print(f"bad-input cases: {len(cases)}")
    print(
        f"exit 1 with one line naming the problem, nothing on stdout, no file changed: "
        f"{len(cases) - len(failures)}"
    )
    for case_id, found in failures:
        print(f"  {case_id}: {'; '.join(found)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
