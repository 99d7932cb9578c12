"""The state file: which vLLM server runs, and what proves the pid is still it.

Compatible with the ImageWorks chat proxy's ``active_vllm.json``: its five
keys keep their names and types, and a state with an empty name or served id,
or a port or pid <= 0, counts as absent, as it does there. The other keys are
ours; the proxy ignores them.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OrchestrationError
from ..layers import atomic_write_bytes


@dataclass(frozen=True)
class State:
    logical_name: str
    served_model_id: str
    port: int
    pid: int
    started_at: float  # epoch seconds, as the chat proxy writes it
    # Proof of identity: /proc/PID/stat field 22 (clock ticks after boot) and
    # the boot it counts from. None in a state the chat proxy wrote.
    process_start_ticks: int | None = None
    boot_id: str | None = None
    host: str = ""
    argv: list[str] = field(default_factory=list)
    log_path: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> State | None:
        """A state, or None where the chat proxy would see none."""
        if not isinstance(data, dict):
            return None
        try:
            state = cls(
                logical_name=str(data["logical_name"] or ""),
                served_model_id=str(data.get("served_model_id") or ""),
                port=int(data["port"]),
                pid=int(data["pid"]),
                started_at=float(data.get("started_at") or 0.0),
                process_start_ticks=_optional_int(data.get("process_start_ticks")),
                boot_id=data.get("boot_id") or None,
                host=str(data.get("host") or ""),
                argv=[str(a) for a in data.get("argv") or []],
                log_path=str(data.get("log_path") or ""),
            )
        except (KeyError, TypeError, ValueError):
            return None
        if not state.logical_name or not state.served_model_id:
            return None
        if state.port <= 0 or state.pid <= 0:
            return None
        return state


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def read_state(path: Path) -> State | None:
    """The recorded state; None when there is none (a malformed file is
    reported on stderr and treated as none, as the chat proxy does)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OrchestrationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        state = State.from_json(json.loads(raw))
    except ValueError:
        state = None
    if state is None:
        print(f"warning: {path}: not a usable state; treated as no server", file=sys.stderr)
    return state


def write_state(path: Path, state: State) -> None:
    """Atomically replace the state file."""
    data = (json.dumps(state.to_json(), indent=2) + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise OrchestrationError(f"{path}: cannot write: {exc.strerror or exc}") from None


def clear_state(path: Path) -> None:
    try:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    except OSError as exc:
        raise OrchestrationError(f"{path}: cannot remove: {exc.strerror or exc}") from None
