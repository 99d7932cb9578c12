"""A first pipeline run records its models in batches (loader/savebatch.py):
the discovered layer is written a bounded number of times, not once per
model, and a run killed before a batch was written loses nothing: the next
run redoes exactly what was not recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap

import pytest
from conftest import DISCOVERED, sha
from pipeline_support import DODO, PYTHON, SHARDS, make_site, ran

MODELS = tuple(f"m{i:02d}_(Q4)" for i in range(24))

# doit as a real process, counting the renames that replace the discovered layer.
COUNT_WRITES = textwrap.dedent(
    """
    import os, runpy, sys
    layer = os.path.realpath(sys.argv.pop(1))
    writes = []
    def hook(event, args):
        if event == "os.rename" and os.path.realpath(str(args[1])) == layer:
            writes.append(1)
    sys.addaudithook(hook)
    sys.argv[0] = "doit"
    try:
        runpy.run_module("doit", run_name="__main__")
    finally:
        print("LAYER-WRITES", len(writes), file=sys.stderr)
    """
)


@pytest.fixture
def site(tmp_path):
    return make_site(tmp_path, MODELS)


def aggregate_of(folder) -> str:
    lines = sorted(f"{sha((folder / rel).read_bytes())}  {rel}" for rel in SHARDS)
    return sha("\n".join(lines).encode())


def recorded(site) -> dict[str, str]:
    entries = site.discovered()
    return {e["name"]: (e.get("artifacts") or {}).get("aggregate_sha256") for e in entries}


def expected(site) -> dict[str, str]:
    return {name: aggregate_of(folder) for name, folder in site.models.items()}


def test_a_first_run_writes_the_discovered_layer_a_bounded_number_of_times(site):
    proc = subprocess.run(
        [PYTHON, "-c", COUNT_WRITES, str(site.registry / DISCOVERED), "-f", str(DODO)]
        + [f"registry.dir={site.registry}"],
        capture_output=True,
        text=True,
        env=site.env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert recorded(site) == expected(site)
    writes = int(proc.stderr.split("LAYER-WRITES")[1].split()[0])
    # batches of at least 16, then at least as many as already written: 16, then
    # the last 8 before the snapshot (a very slow machine may add one every 10 s);
    # one save per model wrote it 24 times
    assert 1 <= writes <= 6, proc.stderr


def test_verifies_noted_by_doit_but_never_written_are_redone(site):
    """What an interrupted run leaves: doit's database says verify ran, but
    the batch holding its records was never written."""
    assert site.doit().returncode == 0
    site.write_discovered([])  # the records of the run are gone
    again = site.doit()
    assert again.returncode == 0, again.stderr
    assert sorted(t for t in ran(again.stdout) if t.startswith("verify:")) == sorted(
        f"verify:{name}" for name in MODELS
    )
    assert recorded(site) == expected(site)
    assert ran(site.doit().stdout) == []


def test_a_run_killed_mid_way_loses_nothing(site):
    env = dict(site.env, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [PYTHON, "-m", "doit", "-f", str(DODO), f"registry.dir={site.registry}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    verified = 0
    try:
        for line in proc.stdout:
            verified += line.startswith(".  verify:")
            if verified == 5:  # some recorded in memory, none written yet
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
        proc.stdout.close()
    assert verified == 5
    assert set(recorded(site).items()) <= set(expected(site).items())  # nothing half-right
    again = site.doit()
    assert again.returncode == 0, again.stderr
    assert recorded(site) == expected(site)
    assert ran(site.doit().stdout) == []
    leftovers = [p for p in os.listdir(site.registry) if p.endswith(".tmp")]
    assert leftovers == []
