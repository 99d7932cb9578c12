"""SIGINT, SIGTERM and SIGHUP during a switch are handled alike.

Left alone, SIGTERM and SIGHUP end the process at once, leaving a server that
no state names, and SIGINT's ``KeyboardInterrupt`` may land between the fork
of a server and the code that would stop it. While a switch runs
(``signals_unwind``), all three raise where the switch can clean up: SIGINT
as ``KeyboardInterrupt``, the others as ``Terminated``; the start's clean-up
stops the new server and writes no state. In a ``critical`` section (a
server being spawned) a signal is only remembered, and raised at the next
``check``. Once the switch is over, the previous handlers are restored and
the signal is delivered again, so the process ends as that signal says (or
the caller's own handler runs).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from loader.errors import OrchestrationError

CAUGHT = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """SIGTERM or SIGHUP during a switch (a ``BaseException``, as
    ``KeyboardInterrupt`` is, so no ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class _Switch:
    pending: list[int] = field(default_factory=list)
    critical: int = 0
    raised: bool = False

    def interrupt(self) -> None:
        """Raise for the pending signal, once (a second signal during the
        clean-up must not cut the clean-up short)."""
        if self.pending and not self.raised:
            self.raised = True
            signum = self.pending[0]
            raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)


_current: _Switch | None = None


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """Run a switch with SIGINT, SIGTERM and SIGHUP raising inside it (see
    the module). Outside the main thread, where handlers cannot be set, the
    block runs unchanged."""
    global _current
    if threading.current_thread() is not threading.main_thread() or _current is not None:
        yield
        return
    switch = _current = _Switch()

    def handler(signum: int, _frame: Any) -> None:
        if not switch.pending:
            switch.pending.append(signum)
        if not switch.critical:
            switch.interrupt()

    previous = {signum: signal.signal(signum, handler) for signum in CAUGHT}
    interrupted = False
    try:
        yield
    except BaseException:
        if not switch.raised:
            raise  # not from a signal of ours
        # Whatever surfaced once our handler had raised is that interruption,
        # after the clean-up ran: CPython turns a KeyboardInterrupt raised
        # inside an import statement into "TypeError: expected a message
        # argument", and the process must still end as the signal says.
        interrupted = True
    finally:
        _current = None
        for signum, old in previous.items():
            signal.signal(signum, old)
    if switch.pending:
        signal.raise_signal(switch.pending[0])
        if interrupted:
            # The caller's handler let us live on: the switch did not happen.
            raise OrchestrationError(
                f"interrupted by {signal.Signals(switch.pending[0]).name}; the server being "
                "started was stopped and no state was written"
            )


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """Within the block, a signal is only remembered (see ``check``)."""
    switch = _current
    if switch is None:
        yield
        return
    switch.critical += 1
    try:
        yield
    finally:
        switch.critical -= 1


def check() -> None:
    """Raise now for a signal that arrived in a ``critical`` section."""
    if _current is not None and not _current.critical:
        _current.interrupt()
