"""SIGTERM and SIGHUP during a switch end it the way Ctrl-C does.

Python turns SIGINT into ``KeyboardInterrupt``, which unwinds through the
start's clean-up (the new server is stopped, no state is written). SIGTERM and
SIGHUP would end the process at once, leaving a server that no state names.
While a switch runs, they raise ``Terminated`` instead; once the clean-up has
run, the previous handlers are restored and the signal is delivered again, so
the process ends as that signal says (or the caller's own handler runs).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import OrchestrationError

CAUGHT = (signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """A termination signal arrived during a switch (a ``BaseException``, as
    ``KeyboardInterrupt`` is, so no ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def terminations_unwind() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``Terminated`` (once: a
    second signal during the clean-up is only remembered). Outside the main
    thread, where handlers cannot be set, the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        received.append(signum)
        if len(received) == 1:
            raise Terminated(signum)

    previous = {signum: signal.signal(signum, handler) for signum in CAUGHT}
    try:
        yield
    except Terminated:
        pass  # the clean-up inside the block has run; deliver the signal below
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
    if received:
        signal.raise_signal(received[0])
        # The caller's handler let us live on: the switch did not happen.
        raise OrchestrationError(
            f"interrupted by {signal.Signals(received[0]).name}; the server being "
            "started was stopped and no state was written"
        )
