"""The inter-process lock: exclusive across processes, re-entrant in a thread."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from loader.file_locks import LockTimeout, file_lock

HOLDER = """
import sys, time
from loader.file_locks import file_lock
with file_lock(sys.argv[1], 5):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_in_another_process(path, seconds):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_lock_held_by_another_process_times_out(tmp_path):
    path = tmp_path / "x.lock"
    holder = hold_in_another_process(path, 3)
    started = time.monotonic()
    with pytest.raises(LockTimeout), file_lock(path, 0.3):
        pass
    assert 0.25 < time.monotonic() - started < 2.5
    holder.wait(timeout=10)


def test_the_lock_is_taken_once_the_other_process_lets_go(tmp_path):
    path = tmp_path / "x.lock"
    holder = hold_in_another_process(path, 0.8)
    started = time.monotonic()
    with file_lock(path, 10):
        waited = time.monotonic() - started
    assert 0.4 < waited < 5  # it waited for the holder instead of failing or barging in
    assert holder.wait(timeout=10) == 0


def test_the_same_thread_can_take_the_lock_again_without_deadlock(tmp_path):
    path = tmp_path / "x.lock"
    with file_lock(path, 1), file_lock(path, 1):
        # still held by this thread: another process cannot have it
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys\nfrom loader.file_locks import file_lock, LockTimeout\n"
                "try:\n    file_lock(sys.argv[1], 0.2).__enter__()\nexcept LockTimeout:\n"
                "    sys.exit(3)\n",
                str(path),
            ],
            timeout=30,
        )
        assert probe.returncode == 3
    # released after the outer block: free for anyone
    with file_lock(path, 0.2):
        pass
