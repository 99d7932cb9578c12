"""Starting one vLLM server: its own process group, its log, its health."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import OrchestrationError
from .health import Health, check_health
from .launch import LaunchPlan, tail
from .process import ProcStat, kill_group, proc_stat
from .settings import Settings

# Servers this process started, so they are reaped here rather than left as
# zombies (and Python does not warn that they outlive their Popen objects).
_started: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Started:
    pid: int
    stat: ProcStat
    log_path: Path
    started_at: float  # epoch seconds
    startup_s: float
    health: Health


class StartFailed(OrchestrationError):
    """The server exited early or was not healthy in time; it has been killed."""


def start_server(plan: LaunchPlan, settings: Settings) -> Started:
    """Launch ``plan`` and wait until it is healthy; on any failure (Ctrl-C
    included) kill its process group, so nothing is left behind."""
    log_path = plan.log_path
    process = _spawn(plan, log_path)
    began, started_at = time.monotonic(), time.time()
    stat = proc_stat(process.pid)
    try:
        if stat is None:  # cannot happen for our own unreaped child
            raise StartFailed(f"vLLM for {plan.name!r}: pid {process.pid} vanished at start")
        health = _wait_until_healthy(process, plan, settings, log_path)
    except BaseException:
        kill_group(process.pid)
        process.wait()
        raise
    _started[process.pid] = process
    return Started(process.pid, stat, log_path, started_at, time.monotonic() - began, health)


def _spawn(plan: LaunchPlan, log_path: Path) -> subprocess.Popen[bytes]:
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if log_path.exists():  # keep the previous start's log, for comparison
            os.replace(log_path, log_path.with_name(log_path.name + ".1"))
        log = open(log_path, "wb")  # noqa: SIM115 (closed below; the child keeps its copy)
    except OSError as exc:
        raise OrchestrationError(f"{log_path}: cannot write the log: {exc.strerror}") from None
    with log:
        log.write(f"# imageworks-loader: {shlex.join(plan.argv)}\n".encode())
        log.flush()
        try:
            return subprocess.Popen(
                plan.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as one
                close_fds=True,
            )
        except OSError as exc:
            raise OrchestrationError(
                f"cannot run {plan.argv[0]!r}: {exc.strerror or exc} "
                "(see orchestrator.python and orchestrator.command)"
            ) from None


def _wait_until_healthy(
    process: subprocess.Popen[bytes], plan: LaunchPlan, settings: Settings, log_path: Path
) -> Health:
    deadline = time.monotonic() + settings.start_timeout_s
    while True:
        code = process.poll()
        if code is not None:
            raise StartFailed(_failure(plan, f"exited with code {code} during start", log_path))
        health = check_health(settings, settings.port, plan.served_id)
        if health.healthy:
            return health
        if time.monotonic() >= deadline:
            reason = f"was not healthy within {settings.start_timeout_s:g}s ({health.detail})"
            raise StartFailed(_failure(plan, reason, log_path))
        time.sleep(settings.poll_interval_s)


def _failure(plan: LaunchPlan, reason: str, log_path: Path) -> str:
    lines = [line for line in tail(log_path) if not line.startswith("# imageworks-loader:")]
    shown = "\n".join("  " + line for line in lines) or "  (the log is empty)"
    return (
        f"vLLM for {plan.name!r} {reason}; it was stopped and no state was written. "
        f"Last lines of {log_path}:\n{shown}"
    )


def forget(pid: int) -> None:
    """Reap a server this process started, once it has been stopped."""
    process = _started.pop(pid, None)
    if process is not None:
        process.poll()
