"""activate / deactivate / current: one vLLM server on one port, switched
under an inter-process lock."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from ..errors import OrchestrationError, RegistryWriteError
from ..locking import LockTimeout, file_lock
from ..registry import Registry, default_registry
from .health import check_health
from .launch import build_launch, flag_name
from .process import (
    boot_id,
    command_line,
    describe,
    group_members,
    kill_group,
    lock_holders,
    port_in_use,
    proc_stat,
    stop_group,
)
from .server import forget, start_server
from .settings import Settings
from .state import State, clear_state, read_state, write_state


class Liveness(Enum):
    RUNNING = "running"  # the recorded process, still alive
    GONE = "gone"  # it exited, and nothing of its group is left
    LEFTOVERS = "leftovers"  # its leader exited; other members of its group live on
    FOREIGN = "foreign"  # the pid now belongs to an unrelated program


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def liveness(state: State) -> Liveness:
    """Whether ``state``'s process is still the one that was started."""
    stat = proc_stat(state.pid)
    if state.process_start_ticks is None:
        # Written by the chat proxy, which records no start time: accept the pid
        # only if its command line serves the recorded port.
        ours = stat is not None and stat.running and _serves_port(state.pid, state.port)
    else:
        same_boot = state.boot_id is None or state.boot_id == boot_id()
        ours = (
            same_boot
            and stat is not None
            and stat.running
            and stat.start_ticks == state.process_start_ticks
        )
        if not same_boot:
            return Liveness.GONE  # a reboot ended every process
    if ours:
        return Liveness.RUNNING
    if stat is not None and stat.running:
        return Liveness.FOREIGN
    # The kernel keeps the number of a group with live members reserved, so
    # members of group PID in session PID are the leftovers of this server.
    leftovers = [
        m
        for m in group_members(state.pid)
        if m.session == state.pid and m.start_ticks >= (state.process_start_ticks or 0)
    ]
    return Liveness.LEFTOVERS if leftovers else Liveness.GONE


def _serves_port(pid: int, port: int) -> bool:
    words = command_line(pid)
    for i, word in enumerate(words):
        if word == "--port" and words[i + 1 : i + 2] == [str(port)]:
            return True
        if flag_name(word) == "--port" and word == f"--port={port}":
            return True
    return False


@contextlib.contextmanager
def _switch_lock(settings: Settings, timeout: float | None = None) -> Iterator[None]:
    path = settings.lock_file
    wait = settings.lock_timeout_s if timeout is None else timeout
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path, wait):
            yield
    except LockTimeout:
        holders = [describe(pid) for pid in lock_holders(path)]
        who = ", ".join(holders) if holders else "another process"
        raise OrchestrationError(
            f"{path}: held by {who}; gave up after {wait:g}s (orchestrator.lock_timeout_s)"
        ) from None
    except OSError as exc:
        raise OrchestrationError(f"{path}: cannot lock: {exc.strerror or exc}") from None


def _settle(state: State, settings: Settings) -> bool:
    """Stop ``state``'s server if it is still ours. Returns True if something
    was stopped; never signals a process whose identity does not match."""
    status = liveness(state)
    if status is Liveness.RUNNING:
        _say(f"stopping {state.logical_name!r} ({describe(state.pid)})")
    elif status is Liveness.LEFTOVERS:
        _say(
            f"warning: {state.logical_name!r} (pid {state.pid}) has exited; "
            "stopping what is left of its process group"
        )
    elif status is Liveness.FOREIGN:
        _say(
            f"warning: {settings.state_file}: pid {state.pid} of {state.logical_name!r} now "
            f"belongs to another program ({describe(state.pid)}); it was not signalled"
        )
        return False
    else:
        _say(f"warning: {state.logical_name!r} (pid {state.pid}) is no longer running")
        return False
    if not stop_group(state.pid, settings.stop_timeout_s):
        _say(
            f"warning: {state.logical_name!r} ignored SIGTERM for {settings.stop_timeout_s:g}s; "
            "killed"
        )
    forget(state.pid)
    return True


def activate(name: str, *, registry: Registry | None = None) -> dict[str, Any]:
    """Make ``name`` the vLLM server on the canonical port; returns the state."""
    registry = registry or default_registry()
    settings = Settings.from_config(registry.cfg)
    settings.require_enabled()
    entry = registry.get(name)
    if entry.backend != "vllm":
        raise OrchestrationError(
            f"model {name!r} has backend {entry.backend!r}; activate-model starts only "
            "vLLM-backed entries"
        )
    plan = build_launch(entry, settings)
    with _switch_lock(settings):
        state = read_state(settings.state_file)
        stopped = False
        if state is not None:
            same = state.logical_name == name and state.port == settings.port
            if same and liveness(state) is Liveness.RUNNING:
                health = check_health(settings, state.port, state.served_model_id)
                if health.healthy:
                    _say(f"{name!r} is already active (pid {state.pid}); nothing restarted")
                    return state.to_json()
                _say(f"{name!r} is running but not healthy ({health.detail}); restarting it")
            stopped = _settle(state, settings)
            clear_state(settings.state_file)
        if stopped:
            time.sleep(settings.restart_backoff_s)
        if port_in_use(settings.host, settings.port):
            raise OrchestrationError(
                f"port {settings.port} is in use by a process imageworks-loader did not "
                f"start; it was left alone (find it with: ss -ltnp 'sport = :{settings.port}')"
            )
        for warning in plan.warnings:
            _say(f"warning: {warning}")
        _say(f"starting {name!r} on port {settings.port} (log: {plan.log_path})")
        started = start_server(plan, settings)
        state = State(
            logical_name=name,
            served_model_id=plan.served_id,
            port=settings.port,
            pid=started.pid,
            started_at=started.started_at,
            process_start_ticks=started.stat.start_ticks,
            boot_id=boot_id(),
            host=settings.host,
            argv=plan.argv,
            log_path=str(started.log_path),
        )
        try:
            write_state(settings.state_file, state)
        except BaseException:
            kill_group(started.pid)  # a server nobody knows of would hold the port and GPU
            forget(started.pid)
            raise
    _record_activation(registry, name, started.startup_s, started.health.max_model_len)
    return state.to_json()


def _record_activation(
    registry: Registry, name: str, startup_s: float, max_model_len: int | None
) -> None:
    from ..hosts import host_name, record

    entry = registry.get(name)
    entry.performance.activation = {
        "startup_s": round(startup_s, 2),
        "max_model_len": max_model_len,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    record(entry, host_name(registry.cfg), "activation", dict(entry.performance.activation))
    try:
        registry.save()
    except RegistryWriteError as exc:
        # The server runs and the state is written; only the record is missing.
        _say(f"warning: performance.activation not recorded: {exc}")


def deactivate(*, registry: Registry | None = None) -> dict[str, Any] | None:
    """Stop the active server and remove the state; returns the state of what
    was stopped, or None when nothing of ours was running."""
    registry = registry or default_registry()
    settings = Settings.from_config(registry.cfg)
    settings.require_enabled()
    with _switch_lock(settings):
        state = read_state(settings.state_file)
        if state is None:
            return None
        stopped = _settle(state, settings)
        clear_state(settings.state_file)
    return state.to_json() if stopped else None


def current(*, registry: Registry | None = None) -> dict[str, Any] | None:
    """The running server's state, or None. A state whose process is gone or
    whose pid was reused is cleared (with a warning) and reported as None."""
    registry = registry or default_registry()
    settings = Settings.from_config(registry.cfg)
    state = read_state(settings.state_file)
    if state is None:
        return None
    status = liveness(state)
    if status is Liveness.RUNNING:
        return state.to_json()
    if status is Liveness.LEFTOVERS:
        _say(
            f"warning: {state.logical_name!r} (pid {state.pid}) has exited but members of its "
            "process group live on; `activate-model --stop` stops them"
        )
        return None
    _clear_if_unchanged(settings, state, status)
    return None


def _clear_if_unchanged(settings: Settings, state: State, status: Liveness) -> None:
    if status is Liveness.GONE:
        why = "is no longer running"
    else:
        why = f"now belongs to another program ({describe(state.pid)}); it was not signalled"
    cleared = ""
    try:
        with _switch_lock(settings, timeout=0):
            if read_state(settings.state_file) == state:
                clear_state(settings.state_file)
                cleared = f"; cleared {settings.state_file}"
    except OrchestrationError as exc:
        # Most often a switch in progress holds the lock; it rewrites the state itself.
        cleared = f"; not cleared ({exc})"
    _say(f"warning: {state.logical_name!r}: pid {state.pid} {why}{cleared}")
