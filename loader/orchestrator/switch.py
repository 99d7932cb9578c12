"""activate / deactivate / current: one vLLM server on one port, switched
under an inter-process lock."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from loader import logs
from loader.errors import OrchestrationError, RegistryWriteError
from loader.file_locks import LockTimeout, file_lock
from loader.orchestrator import cgroup
from loader.orchestrator.health import check_health
from loader.orchestrator.launch import build_launch
from loader.orchestrator.process import boot_id, describe, lock_holders, port_holders, port_in_use
from loader.orchestrator.server import forget, start_server
from loader.orchestrator.settings import Settings
from loader.orchestrator.signals import critical, signals_unwind
from loader.orchestrator.state import State, clear_state, read_state, write_state
from loader.orchestrator.tree import Liveness, identify, kill_tree, stop_tree
from loader.registry.core import Registry, default_registry

# How long a stopped server's port may take to be free (its sockets close as
# its processes exit; this only covers the kernel's own bookkeeping).
PORT_FREE_WAIT_S = 5.0


def liveness(state: State) -> Liveness:
    """Whether ``state``'s process is still the one that was started (see ``tree``)."""
    return identify(state)[0]


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
    """Stop ``state``'s server if it is still ours: its whole tree, and never
    a process whose identity does not match. Returns True if something was
    stopped; raises if the port is still held afterwards."""
    status, tree = identify(state)
    if status is Liveness.RUNNING:
        logs.info(__name__, f"stopping {state.logical_name!r} ({describe(state.pid)})")
    elif status is Liveness.LEFTOVERS:
        logs.warning(
            __name__,
            f"{state.logical_name!r} (pid {state.pid}) has exited; stopping what is "
            f"left of it: {', '.join(f'pid {pid}' for pid in sorted(tree.members))}",
        )
    elif status is Liveness.FOREIGN:
        logs.warning(
            __name__,
            f"{settings.state_file}: pid {state.pid} of {state.logical_name!r} now "
            f"belongs to another program ({describe(state.pid)}); it was not signalled",
        )
        return False
    else:
        logs.warning(__name__, f"{state.logical_name!r} (pid {state.pid}) is no longer running")
        if tree.cgroup is not None:
            cgroup.remove(tree.cgroup)  # only if empty: a cgroup with a process refuses
        return False
    stopped = stop_tree(tree, settings.stop_timeout_s)
    if stopped.killed:
        logs.warning(
            __name__,
            f"{state.logical_name!r} ignored SIGTERM for {settings.stop_timeout_s:g}s; killed",
        )
    forget(state.pid)
    if tree.cgroup is not None and not stopped.survivors:
        cgroup.remove(tree.cgroup)
    if stopped.survivors:
        raise OrchestrationError(
            f"{state.logical_name!r}: {', '.join(map(describe, stopped.survivors))} survived "
            "SIGKILL (stuck in the kernel?); the state was kept"
        )
    return True


def _require_port_free(port: int, settings: Settings, stopped: State | None) -> None:
    """Raise naming the holder when something listens on ``port``; after a
    stop (``stopped``), give the kernel a moment to let the port go first."""
    deadline = time.monotonic() + (PORT_FREE_WAIT_S if stopped else 0)
    while port_in_use(settings.host, port):
        if time.monotonic() >= deadline:
            holders = [describe(pid) for pid in port_holders(port)]
            who = ", ".join(holders) or "a process that cannot be seen from here"
            if stopped is None:
                raise OrchestrationError(
                    f"port {port} is in use by {who}, which imageworks-loader did not start; "
                    "it was left alone"
                )
            raise OrchestrationError(
                f"port {port} is still held by {who} after stopping "
                f"{stopped.logical_name!r}; it is not provably part of that server, so it "
                "was left alone"
            )
        time.sleep(0.05)


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
    with signals_unwind(), _switch_lock(settings):
        state = read_state(settings.state_file)
        if state is not None:
            same = state.logical_name == name and state.port == settings.port
            if same and liveness(state) is Liveness.RUNNING:
                health = check_health(settings, state.port, state.served_model_id)
                if health.healthy:
                    logs.info(
                        __name__, f"{name!r} is already active (pid {state.pid}); nothing restarted"
                    )
                    return state.to_json()
                logs.info(
                    __name__,
                    f"{name!r} is running but not healthy ({health.detail}); restarting it",
                )
            stopped = _settle(state, settings)
            clear_state(settings.state_file)
            if stopped:
                _require_port_free(state.port, settings, stopped=state)
                time.sleep(settings.restart_backoff_s)
        _require_port_free(settings.port, settings, stopped=None)
        for warning in plan.warnings:
            logs.warning(__name__, warning)
        logs.info(__name__, f"starting {name!r} on port {settings.port} (log: {plan.log_path})")
        started = start_server(plan, settings)
        state = State(
            logical_name=name,
            served_model_id=plan.served_id,
            port=settings.port,
            pid=started.pid,
            started_at=started.started_at,
            process_start_ticks=started.stat.start_ticks,
            boot_id=boot_id(),
            instance=started.token,
            cgroup=str(started.cgroup) if started.cgroup else None,
            cgroup_why_not=started.cgroup_why_not,
            host=settings.host,
            argv=plan.argv,
            log_path=str(started.log_path),
        )
        try:
            with critical():  # a signal now is delivered once the state is written
                write_state(settings.state_file, state)
        except BaseException:
            # a server nobody knows of would hold the port and GPU
            tree = identify(state)[1]
            kill_tree(tree)
            if tree.cgroup is not None:
                cgroup.remove(tree.cgroup)
            forget(started.pid)
            raise
    _record_activation(registry, name, started.startup_s, started.health.max_model_len)
    return state.to_json()


def _record_activation(
    registry: Registry, name: str, startup_s: float, max_model_len: int | None
) -> None:
    from loader.registry.hosts import host_name, record

    entry = registry.get(name)
    activation = {
        "startup_s": round(startup_s, 2),
        "max_model_len": max_model_len,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    # An extra field (extra="allow"), not declared: entries without one stay as they are.
    entry.performance.activation = activation  # type: ignore[attr-defined]
    record(entry, host_name(registry.cfg), "activation", dict(activation))
    try:
        registry.save()
    except RegistryWriteError as exc:
        # The server runs and the state is written; only the record is missing.
        logs.warning(__name__, f"performance.activation not recorded: {exc}")


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
        if stopped:
            _require_port_free(state.port, settings, stopped=state)
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
        logs.warning(
            __name__,
            f"{state.logical_name!r} (pid {state.pid}) has exited but members of its "
            "process tree live on; `activate-model --stop` stops them",
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
    logs.warning(__name__, f"{state.logical_name!r}: pid {state.pid} {why}{cleared}")
