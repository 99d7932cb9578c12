"""Hashing progress: one throttled, self-overwriting line on stderr."""

from __future__ import annotations

import threading
import time
from typing import TextIO


class Progress:
    """One throttled, self-overwriting status line on stderr."""

    INTERVAL = 0.25

    def __init__(self, files_total: int, bytes_total: int, stream: TextIO | None) -> None:
        self.files_total = files_total
        self.bytes_total = bytes_total
        self.files_done = 0
        self.bytes_done = 0
        self.stream = stream
        self._lock = threading.Lock()
        self._last = 0.0
        self._shown = False

    def add(self, nbytes: int = 0, files: int = 0) -> None:
        with self._lock:
            self.bytes_done += nbytes
            self.files_done += files
            if self.stream is None:
                return
            now = time.monotonic()
            if now - self._last >= self.INTERVAL or self.files_done == self.files_total:
                self._last = now
                self._draw(self.stream)

    def _draw(self, stream: TextIO) -> None:
        gib = 1024**3
        stream.write(
            f"\rhashing: {self.files_done}/{self.files_total} files, "
            f"{self.bytes_done / gib:.2f}/{self.bytes_total / gib:.2f} GiB"
        )
        stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self.stream is not None and self._shown:
            self.stream.write("\n")
            self.stream.flush()
