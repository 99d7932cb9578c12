"""Starting one vLLM server: its own session, its instance token, its log
(through the rotating log writer), its health."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from loader.errors import OrchestrationError
from loader.orchestrator import cgroup, logwriter, signals
from loader.orchestrator.health import Health, check_health
from loader.orchestrator.launch import LaunchPlan, tail
from loader.orchestrator.process import ProcStat, proc_stat
from loader.orchestrator.settings import Settings
from loader.orchestrator.tree import TOKEN_VAR, Tree, kill_tree, new_token

# Servers (and log writers) this process started, so they are reaped here
# rather than left as zombies (and Python does not warn that they outlive
# their Popen objects).
_started: dict[int, subprocess.Popen[bytes]] = {}
_log_writers: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class Started:
    pid: int
    stat: ProcStat
    token: str
    cgroup: Path | None
    cgroup_why_not: str | None
    log_path: Path
    started_at: float  # epoch seconds
    startup_s: float
    health: Health


class StartFailed(OrchestrationError):
    """The server exited early or was not healthy in time; it has been killed."""


def start_server(plan: LaunchPlan, settings: Settings) -> Started:
    """Launch ``plan`` and wait until it is healthy; on any failure (SIGINT,
    SIGTERM and SIGHUP included, see ``signals``) kill its whole tree, so
    nothing is left behind."""
    token = new_token()
    group, why_not = None, "orchestrator.use_cgroup is false"
    process = writer = tree = None
    try:
        # From the fork until its tree is known, a signal is only remembered
        # (see ``signals``): it must not land between the two.
        with signals.critical():
            if settings.use_cgroup:
                group, why_not = cgroup.create(token)
            writer, process = _spawn(plan, settings, token)
            began, started_at = time.monotonic(), time.time()
            if group is not None:
                # At once: what the launcher forks before this is still found by its token.
                why_not = cgroup.join(group, process.pid)
                group = None if why_not else group
            stat = proc_stat(process.pid)
            tree = Tree(stat.start_ticks if stat else None, token, group)
            if stat is not None:
                tree.members[process.pid] = stat.start_ticks
        signals.check()  # a signal that came meanwhile: stop the server now
        if stat is None:  # cannot happen for our own unreaped child
            raise StartFailed(f"vLLM for {plan.name!r}: pid {process.pid} vanished at start")
        health = _wait_until_healthy(process, plan, settings)
    except StartFailed as exc:
        if process is not None and writer is not None:  # always, once spawned
            _end(tree, process, writer)
        raise StartFailed(f"{exc} Last lines of {plan.log_path}:\n{_log_tail(plan)}") from None
    except BaseException:
        if process is not None and writer is not None:
            _end(tree, process, writer)
        elif group is not None:
            cgroup.remove(group)
        raise
    _started[process.pid] = process
    return Started(
        pid=process.pid,
        stat=stat,
        token=token,
        cgroup=group,
        cgroup_why_not=why_not or None,
        log_path=plan.log_path,
        started_at=started_at,
        startup_s=time.monotonic() - began,
        health=health,
    )


def _spawn(
    plan: LaunchPlan, settings: Settings, token: str
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """The log writer, then the server with its output piped to it."""
    log_path = plan.log_path
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # keep the previous start's log (and older pieces), for comparison
        logwriter.rotate(log_path, settings.log_keep)
        with open(log_path, "wb") as log:
            log.write(f"# imageworks-loader: {shlex.join(plan.argv)}\n".encode())
    except OSError as exc:
        raise OrchestrationError(f"{log_path}: cannot write the log: {exc.strerror}") from None
    read_end, write_end = os.pipe()
    try:
        writer = subprocess.Popen(
            [sys.executable, logwriter.__file__, str(log_path)]
            + [str(settings.log_max_bytes), str(settings.log_keep)],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C at the terminal must not cut the log
            close_fds=True,
        )
        _log_writers.append(writer)
        try:
            server = subprocess.Popen(
                plan.argv,
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session, away from the terminal's signals
                close_fds=True,
                env={**os.environ, TOKEN_VAR: token},  # marks the server's whole tree
            )
        except OSError as exc:
            raise OrchestrationError(
                f"cannot run {plan.argv[0]!r}: {exc.strerror or exc} "
                "(see orchestrator.python and orchestrator.command)"
            ) from None
    finally:
        os.close(read_end)
        os.close(write_end)  # the server holds the only write end now: EOF when it is gone
    return writer, server


def _wait_until_healthy(
    process: subprocess.Popen[bytes],
    plan: LaunchPlan,
    settings: Settings,
) -> Health:
    deadline = time.monotonic() + settings.start_timeout_s
    before = ""  # the previous round's answer: the last may only say the time ran out
    while True:
        code = process.poll()
        if code is not None:
            raise _failure(plan, f"exited with code {code} during start")
        left = deadline - time.monotonic()
        health = check_health(settings, settings.port, plan.served_id, within=max(left, 0.05))
        code = process.poll()
        if code is not None:  # healthy or not, a launcher that has exited is no server
            raise _failure(plan, f"exited with code {code} during start")
        if health.healthy:
            return health
        if time.monotonic() >= deadline:
            detail = health.detail
            if before and before != detail:
                detail += f"; the check before: {before}"
            reason = f"was not healthy within {settings.start_timeout_s:g}s ({detail})"
            raise _failure(plan, reason)
        before = health.detail
        time.sleep(min(settings.poll_interval_s, max(deadline - time.monotonic(), 0)))


def _failure(plan: LaunchPlan, reason: str) -> StartFailed:
    if "exited with code 0" in reason:
        reason += " (a launcher must run the server in the foreground, not daemonize it)"
    return StartFailed(f"vLLM for {plan.name!r} {reason}; it was stopped and no state was written.")


def _end(
    tree: Tree | None, process: subprocess.Popen[bytes], writer: subprocess.Popen[bytes]
) -> None:
    """Kill the whole tree, then let the log writer take its last lines (it
    ends at EOF; something outside the tree holding the pipe would keep it)."""
    if tree is None:  # failed before its tree was known: the process itself
        process.kill()
    else:
        kill_tree(tree)
    process.wait()
    if tree is not None and tree.cgroup is not None:
        cgroup.remove(tree.cgroup)
    with contextlib.suppress(subprocess.TimeoutExpired):
        writer.wait(timeout=5)


def _log_tail(plan: LaunchPlan) -> str:
    lines = [line for line in tail(plan.log_path) if not line.startswith("# imageworks-loader:")]
    return "\n".join("  " + line for line in lines) or "  (the log is empty)"


def forget(pid: int) -> None:
    """Reap a server this process started, once it has been stopped."""
    process = _started.pop(pid, None)
    if process is not None:
        process.poll()
    for writer in list(_log_writers):
        if writer.poll() is not None:
            _log_writers.remove(writer)
