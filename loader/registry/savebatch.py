"""Batched saves for a long run that records many models (the doit pipeline).

A full save re-reads, rewrites and re-composes the whole discovered layer, so
one save per model made the first run over N models cost O(N^2): 470 s at
1,000 models. While a ``SaveBatch`` is active, ``Registry.save()`` only
counts; the changes are written together when the batch is due: once
``pending`` reaches the number of saves already written (so the number of
writes grows as log N) or ``max_seconds`` have passed (so a kill loses at
most that much recorded work, which the next run redoes), and whenever the
run ends or something must read the layer from disk.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SaveBatch:
    """When deferred saves are written; only in the process that started it
    (a forked doit worker saves at once: its memory dies with it)."""

    min_batch: int = 16
    max_seconds: float = 10.0
    # Run first at each write (e.g. saving the shared hash cache).
    before_write: Callable[[], None] | None = None
    pid: int = field(default_factory=os.getpid)
    pending: int = 0
    saved: int = 0
    writes: int = 0
    last_write: float = field(default_factory=time.monotonic)

    def active(self) -> bool:
        return self.pid == os.getpid()

    def note(self) -> bool:
        """One more deferred save; True when the batch is due to be written."""
        self.pending += 1
        waited = time.monotonic() - self.last_write
        return self.pending >= max(self.min_batch, self.saved) or waited >= self.max_seconds

    def written(self) -> None:
        self.saved += self.pending
        self.pending = 0
        self.writes += 1
        self.last_write = time.monotonic()
