"""Crash, concurrency and lock-contention families, seeded and small enough
for CI. bench/stress_kill.py and bench/stress_writers.py run the same trials
at full size (200 kills, 8 writers x 100 operations)."""

from __future__ import annotations

import json
import os
import time

import pytest
from hardening_support import shared_config_cache  # noqa: F401 (autouse fixture)
from stress_harness import (
    DISCOVERED,
    SNAPSHOT,
    build_registry,
    cli,
    concurrent_writers,
    drop_snapshot,
    hold_registry_lock,
    kill_trials,
    release,
    temp_files,
)

SEED = int(os.environ.get("IMAGEWORKS_STRESS_SEED", "11"))


@pytest.fixture
def registry(tmp_path):
    folder = tmp_path / "reg"
    names = build_registry(folder, 40)
    assert cli(folder, "list").returncode == 0
    return folder, names


# --- crash -----------------------------------------------------------------------


def test_kill_9_during_writes_never_corrupts_and_the_next_write_cleans_up(registry):
    folder, names = registry
    report = kill_trials(folder, names, trials=10, seed=SEED)
    assert report.corrupt == []
    assert report.temps_after_next == 0
    assert report.killed_mid_run > 0  # the trials really interrupted commands


def test_a_temp_file_from_a_killed_writer_is_removed_by_a_read_that_refreshes(registry):
    folder, names = registry
    from loader.registry.layers import host_tag

    # no such process id on Linux
    stale = folder / f".{SNAPSHOT}.{host_tag()}.999999999.1.tmp"
    stale.write_bytes(b"[")
    drop_snapshot(folder)
    assert cli(folder, "list").returncode == 0
    assert temp_files(folder) == []


# --- concurrency -------------------------------------------------------------------


def test_concurrent_writers_beside_readers_lose_nothing(registry):
    folder, names = registry
    report = concurrent_writers(folder, names, writers=3, ops=4, readers=1, seed=SEED)
    assert report.failed_writes == []
    assert report.lost_updates == []
    assert report.failed_reads == []
    assert report.writes == 12 and report.reads > 0


def test_concurrent_verifies_all_record_their_entry(registry):
    folder, names = registry
    chosen = names[:4]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: cli(folder, "verify", n), chosen))
    assert [r.returncode for r in results] == [0] * 4, [r.stderr for r in results]
    layer = {e["name"]: e for e in json.loads((folder / DISCOVERED).read_text())}
    for name in chosen:
        assert layer[name]["artifacts"]["aggregate_sha256"]
        assert layer[name]["version_lock"]["last_verified"]


# --- lock contention -----------------------------------------------------------------


@pytest.mark.parametrize("args", [("list",), ("metrics",), ("explain", "model-000_(Q4)")])
def test_reads_with_the_lock_held_finish_at_once_and_say_why_once(registry, args):
    folder, _ = registry
    drop_snapshot(folder)
    holder = hold_registry_lock(folder)
    try:
        started = time.monotonic()
        result = cli(folder, *args, timeout=50)
        elapsed = time.monotonic() - started
    finally:
        release(holder)
    assert result.returncode == 0, result.stderr
    assert elapsed < 15
    warnings = result.stderr.strip().splitlines()
    if args[0] != "explain":  # explain composes without refreshing
        assert len(warnings) == 1 and "busy" in warnings[0], warnings
    assert not (folder / SNAPSHOT).exists()


def test_a_write_waits_for_the_lock_and_then_persists(registry):
    folder, names = registry
    holder = hold_registry_lock(folder)
    import threading

    threading.Timer(1.5, release, args=(holder,)).start()
    started = time.monotonic()
    result = cli(folder, "lock", names[1], timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1.0  # it waited for the holder
    layer = {e["name"]: e for e in json.loads((folder / DISCOVERED).read_text())}
    assert layer[names[1]]["version_lock"]["locked"] is True
