"""The bad-input corpus: every case exits 1 with one line and changes nothing.

All cases run in-process through ``loader.cli.main`` (the CLI's own entry
point, so an escaping exception fails the test); a sample also runs through
the real executable. bench/run_bad_inputs.py runs every case that way."""

from __future__ import annotations

import gc
import os
import subprocess

import pytest
from bad_input_corpus import environment, fingerprint, load_cases, materialize, problems
from conftest import CLI
from hardening_support import shared_config_cache  # noqa: F401 (autouse fixture)

CASES = load_cases()
SAMPLE = ["syntax-00", "nonfinite-0", "deep-2", "special-fifo", "verify-0", "config-doubling"]


def test_the_corpus_holds_at_least_100_distinct_cases():
    ids = [case["id"] for case in CASES]
    assert len(ids) >= 100 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input_in_process(case, tmp_path, capsys, monkeypatch):
    from loader.frontdoors.cli import main

    folder, args = materialize(case, tmp_path)
    for key, value in environment(folder).items():
        monkeypatch.setenv(key, value)
    before = fingerprint(folder)
    try:
        code = main(args)
    finally:
        gc.enable()  # main() turns the collector off for a one-shot process
    out, err = capsys.readouterr()
    assert problems(case, code, out, err, before, fingerprint(folder)) == []


@pytest.mark.parametrize("case_id", SAMPLE)
def test_bad_input_through_the_real_executable(case_id, tmp_path):
    case = next(c for c in CASES if c["id"] == case_id)
    folder, args = materialize(case, tmp_path)
    before = fingerprint(folder)
    env = {**os.environ, **environment(folder)}
    proc = subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=60, env=env)
    found = problems(case, proc.returncode, proc.stdout, proc.stderr, before, fingerprint(folder))
    assert found == []
