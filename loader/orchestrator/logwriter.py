"""A server's log, rotated at a size: what the server writes to its stdout
and stderr comes through a pipe to this small process, which appends it to
the log and, when the log would pass ``max_bytes``, renames it to ``.1``
(``.1`` to ``.2`` …, keeping ``keep`` old pieces) and starts a new one.

    python loader/orchestrator/logwriter.py LOG MAX_BYTES KEEP   # the pipe on stdin

It exits when the last writer closes the pipe (the server's whole tree has
exited). It is run by its path, importing nothing of the package, so it starts
in milliseconds; ``rotate`` is also what a new start uses to keep the
previous start's log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

CHUNK = 64 * 1024


def rotate(path: Path, keep: int) -> None:
    """``path`` becomes ``path.1``, ``path.1`` becomes ``path.2`` …; the piece
    past ``keep`` is dropped. Missing pieces are skipped."""
    for index in range(keep, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        newer = path if index == 1 else path.with_name(f"{path.name}.{index - 1}")
        try:
            os.replace(newer, older)
        except FileNotFoundError:
            continue
    if keep < 1:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def cut(data: bytes, room: int) -> int:
    """Where to split ``data`` so the first part fits in ``room`` bytes: after
    the last newline that fits, else (one line longer than a piece) at ``room``."""
    end = data.rfind(b"\n", 0, room)
    return end + 1 if end >= 0 else room


def copy(source: int, path: Path, max_bytes: int, keep: int) -> None:
    log = open(path, "ab")  # noqa: SIM115 (replaced at each rotation)
    size = log.tell()
    try:
        while True:
            data = os.read(source, CHUNK)
            if not data:
                return
            while size + len(data) > max_bytes:
                room = max_bytes - size
                head = cut(data, room) if room > 0 else 0
                log.write(data[:head])
                log.close()
                rotate(path, keep)
                log = open(path, "ab")  # noqa: SIM115
                size, data = 0, data[head:]
            log.write(data)
            log.flush()
            size += len(data)
    finally:
        log.close()


def main(argv: list[str]) -> int:
    path, max_bytes, keep = Path(argv[0]), int(argv[1]), int(argv[2])
    # A Ctrl-C or hang-up meant for the loader must not cut the server's log
    # (and so its stdout) short; the log ends when the server does.
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    try:
        copy(sys.stdin.fileno(), path, max_bytes, keep)
    except OSError:
        # The log cannot be written (a full disk): keep draining, so the server never blocks.
        while os.read(sys.stdin.fileno(), CHUNK):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
