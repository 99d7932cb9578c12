"""The state file: which vLLM server runs, and what proves the pid is still it.

Compatible with the ImageWorks chat proxy's ``active_vllm.json``: its five
keys keep their names and types, and a state with an empty name or served id,
or a port or pid <= 0, counts as absent, as it does there. The other keys are
ours; the proxy ignores them.

The file is outside data: it is read as a layer is (a regular file, at most
``MAX_STATE_BYTES``, strict JSON), and anything else is one line naming the
file and the field, never a guess.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loader import logs, strictjson
from loader.errors import OrchestrationError
from loader.fileio import FileTooLarge, NotRegularFile, atomic_write_bytes, read_regular_file

# A state is a few hundred bytes; its argv may be long, never this long.
MAX_STATE_BYTES = 1024 * 1024


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
    # IMAGEWORKS_VLLM_INSTANCE in the server's environment: marks its whole tree.
    instance: str | None = None
    # The server's own cgroup, or why it has none.
    cgroup: str | None = None
    cgroup_why_not: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "state") -> State | None:
        """A state, or None where the chat proxy would see none. Raises
        ``OrchestrationError`` naming the field for a value of the wrong type."""
        if not isinstance(data, dict):
            raise OrchestrationError(
                f"{where}: expected a JSON object, found {type(data).__name__}"
            )
        fields = _Fields(data, where)
        state = cls(
            logical_name=fields.text("logical_name"),
            served_model_id=fields.text("served_model_id"),
            port=fields.integer("port"),
            pid=fields.integer("pid"),
            started_at=fields.number("started_at"),
            process_start_ticks=fields.integer("process_start_ticks", optional=True),
            boot_id=fields.text("boot_id") or None,
            instance=fields.text("instance") or None,
            cgroup=fields.text("cgroup") or None,
            cgroup_why_not=fields.text("cgroup_why_not") or None,
            host=fields.text("host"),
            argv=fields.words("argv"),
            log_path=fields.text("log_path"),
        )
        if not state.logical_name or not state.served_model_id:
            return None
        if state.port <= 0 or state.pid <= 0:
            return None
        return state


class _Fields:
    """Typed reads of a state's keys; a missing key is the proxy's empty value."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data, self.where = data, where

    def _bad(self, key: str, what: str) -> OrchestrationError:
        return OrchestrationError(f"{self.where}: {key}: not {what}: {self.data[key]!r:.80}")

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def integer(self, key: str, optional: bool = False) -> Any:
        value = self.data.get(key)
        if value is None:
            return None if optional else 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "an integer")
        return value

    def number(self, key: str) -> float:
        value = self.data.get(key)
        if value is None:
            return 0.0
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self._bad(key, "a number")
        return float(value)

    def words(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
            raise self._bad(key, "a list of strings")
        return list(value)


def read_state(path: Path) -> State | None:
    """The recorded state; None when there is none, or the chat proxy would
    see none (a warning says so). A state file that cannot be read as one,
    or holds a field of the wrong type, raises ``OrchestrationError``."""
    try:
        raw = read_regular_file(path, MAX_STATE_BYTES)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise OrchestrationError(f"{path}: is a folder, expected the state file") from None
    except NotRegularFile:
        raise OrchestrationError(
            f"{path}: not a regular file (a FIFO, device or socket); refusing to read it"
        ) from None
    except FileTooLarge:
        raise OrchestrationError(
            f"{path}: larger than {MAX_STATE_BYTES} bytes; not a state file, refusing to read it"
        ) from None
    except OSError as exc:
        raise OrchestrationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    hint = "fix or remove it (no server is stopped or started until then)"
    try:
        data = strictjson.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise OrchestrationError(f"{path}: not UTF-8; {hint}") from None
    except json.JSONDecodeError as exc:
        raise OrchestrationError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}; {hint}"
        ) from None
    except strictjson.StrictJsonError as exc:
        at = ".".join(exc.where) or (f"at {exc.line_col}" if exc.line_col else "JSON")
        raise OrchestrationError(f"{path}: {at}: {exc.problem}; {hint}") from None
    state = State.from_json(data, str(path))
    if state is None:
        logs.warning(__name__, f"{path}: not a usable state; treated as no server")
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
