"""One server's process tree: everything a stop must end, and nothing else.

A server is more than its pid: vLLM starts engine workers, a launcher may
fork a child that calls ``setsid()``, a wrapper may daemonize, and the
ImageWorks chat proxy starts vLLM without a session of its own (its pid leads
no group). So a stop signals neither a process group nor a session by
number; it signals what is proven to be the server's:

- **the root**, the recorded pid, while it is provably the recorded process:
  the same boot and the same start time (``/proc/PID/stat`` field 22); for a
  state the chat proxy wrote, which records no start time, a start no later
  than the state's ``started_at`` and a command line serving its port;
- **every descendant** of a member, found through ``/proc``'s parent links;
  once found, a process stays a member by its pid and start time, even after
  its parent exits and it is reparented;
- **every process carrying the server's instance token**: the orchestrator
  starts each server with ``IMAGEWORKS_VLLM_INSTANCE=<random>`` in its
  environment, which every descendant inherits, across ``setsid()`` and
  daemonizing, and which the state records;

A dead root's number may since name someone else's process, group or
session; none of those is ever signalled unless it is a member by the rules
above. Each signal goes through a pidfd after checking the start time, so a
number reused in between is not hit either.

- **every process in the server's cgroup**, where one could be made (see
  ``cgroup``): whatever a process does to its session, parent or
  environment, it stays in the cgroup it was started in.

Token carriers and cgroup members count only if they started no earlier
than the root.

Without a cgroup, a process that both scrubs its environment and leaves its
parent is the one case missed; the port check after every stop names it.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from loader.orchestrator import cgroup
from loader.orchestrator.launch import flag_name
from loader.orchestrator.process import (
    ProcStat,
    all_processes,
    boot_id,
    command_line,
    environ_has,
    proc_stat,
    reap,
    signal_exact,
    start_epoch,
)
from loader.orchestrator.state import State

TOKEN_VAR = "IMAGEWORKS_VLLM_INSTANCE"
# The chat proxy records started_at once the process exists; the boot time is
# known to a second. A recorded pid that started later than this is another program.
STARTED_AT_SLACK_S = 5.0


def new_token() -> str:
    return secrets.token_hex(16)


class Liveness(Enum):
    RUNNING = "running"  # the recorded process, still alive
    GONE = "gone"  # it exited, and nothing of its tree is left
    LEFTOVERS = "leftovers"  # it exited; processes of its tree live on
    FOREIGN = "foreign"  # the pid now belongs to an unrelated program


@dataclass
class Tree:
    """The members of one server's tree, refreshed from ``/proc`` on demand."""

    root_ticks: int | None  # the root's start; tokens count only from then on
    token: str | None
    cgroup: Path | None = None  # the server's own cgroup, where one was made
    members: dict[int, int] = field(default_factory=dict)  # pid -> start ticks

    def refresh(self) -> dict[int, int]:
        """The live members now: the known ones still alive, the token's
        carriers, and all their descendants."""
        processes = all_processes()
        by_pid = {p.pid: p for p in processes}
        live = {
            pid: ticks
            for pid, ticks in self.members.items()
            if pid in by_pid and by_pid[pid].start_ticks == ticks
        }
        floor = self.root_ticks or 0
        if self.cgroup is not None:
            for pid in cgroup.members(self.cgroup):
                p = by_pid.get(pid)
                if p is not None and p.start_ticks >= floor:
                    live[pid] = p.start_ticks
        if self.token:
            entry = f"{TOKEN_VAR}={self.token}".encode()
            for p in processes:
                if p.pid not in live and p.start_ticks >= floor and environ_has(p.pid, entry):
                    live[p.pid] = p.start_ticks
        children: dict[int, list[ProcStat]] = defaultdict(list)
        for p in processes:
            children[p.ppid].append(p)
        queue = list(live)
        while queue:
            for child in children.get(queue.pop(), ()):
                if child.pid not in live:
                    live[child.pid] = child.start_ticks
                    queue.append(child.pid)
        live.pop(os.getpid(), None)  # never the caller itself
        self.members = live
        return dict(live)


def identify(state: State) -> tuple[Liveness, Tree]:
    """Whether ``state``'s server still runs, and its tree."""
    stat = proc_stat(state.pid)
    if state.boot_id is not None and state.boot_id != boot_id():
        return Liveness.GONE, Tree(None, None)  # a reboot ended every process
    alive = stat is not None and stat.running
    proven = False
    if stat is not None and alive:
        if state.process_start_ticks is not None:
            proven = stat.start_ticks == state.process_start_ticks
        else:
            proven = _started_by(stat, state.started_at) and _serves_port(state)
    tree = Tree(state.process_start_ticks, state.instance, cgroup_of(state))
    if proven and stat is not None:
        # the rest of the tree is found when it is needed (a stop refreshes it)
        tree.members[state.pid] = stat.start_ticks
        tree.root_ticks = stat.start_ticks
        return Liveness.RUNNING, tree
    if tree.refresh():
        return Liveness.LEFTOVERS, tree
    return (Liveness.FOREIGN if alive else Liveness.GONE), tree


def cgroup_of(state: State) -> Path | None:
    """The state's cgroup, if it is one the orchestrator made for that very
    server (its name holds the instance token): the state file is outside
    data, and must not point a stop at some other cgroup."""
    if not state.cgroup or not state.instance:
        return None
    path = Path(state.cgroup)
    if not path.is_absolute() or path.name != cgroup.name_for(state.instance):
        return None
    return path if cgroup.is_cgroup(path) else None


def _started_by(stat: ProcStat, started_at: float) -> bool:
    epoch = start_epoch(stat.start_ticks)
    return epoch is not None and epoch <= started_at + STARTED_AT_SLACK_S


def _serves_port(state: State) -> bool:
    words = command_line(state.pid)
    for i, word in enumerate(words):
        if word == "--port" and words[i + 1 : i + 2] == [str(state.port)]:
            return True
        if flag_name(word) == "--port" and word == f"--port={state.port}":
            return True
    return False


@dataclass(frozen=True)
class Stopped:
    killed: bool  # SIGTERM was not enough
    survivors: list[int]  # still alive after SIGKILL (stuck in the kernel)


def stop_tree(tree: Tree, timeout: float) -> Stopped:
    """SIGTERM every member (and every member found meanwhile), wait up to
    ``timeout`` s for the tree to be empty, then SIGKILL what is left."""
    signalled: set[tuple[int, int]] = set()
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        members = _live(tree)
        if not members:
            return Stopped(False, [])
        for member in members.items():
            if member not in signalled:
                signal_exact(*member, signal.SIGTERM)
                signalled.add(member)
        if time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.25)
    return Stopped(True, kill_tree(tree))


def kill_tree(tree: Tree, wait: float = 10.0) -> list[int]:
    """SIGKILL every member until none is left (or ``wait`` s have passed);
    returns the pids still alive."""
    deadline = time.monotonic() + wait
    while True:
        members = _live(tree)
        if not members or time.monotonic() >= deadline:
            return sorted(members)
        if tree.cgroup is not None:
            cgroup.kill(tree.cgroup)  # all of it at once: nothing forks away meanwhile
        for member in members.items():
            signal_exact(*member, signal.SIGKILL)
        time.sleep(0.02)


def _live(tree: Tree) -> dict[int, int]:
    for pid in tree.members:
        reap(pid)  # our own children would otherwise linger as zombies
    return tree.refresh()
