"""The orchestrator's settings, read once from the composed config."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loader.config import Config
from loader.errors import OrchestrationError


@dataclass(frozen=True)
class Settings:
    """``conf/orchestrator/`` as typed values (every default lives in the YAML)."""

    enabled: bool
    port: int
    host: str
    health_host: str
    python: str
    command: tuple[str, ...]
    gpu_memory_utilization: float | None
    max_model_len: int | None
    start_timeout_s: float
    stop_timeout_s: float
    lock_timeout_s: float
    restart_backoff_s: float
    poll_interval_s: float
    request_timeout_s: float
    health_max_bytes: int
    log_max_bytes: int
    log_keep: int
    use_cgroup: bool
    health_paths: tuple[str, ...]
    models_path: str
    state_file: Path

    @classmethod
    def from_config(cls, cfg: Config) -> Settings:
        raw: dict[str, Any] = cfg.get("orchestrator") or {}

        def number(key: str, kind: type = float, optional: bool = False, least: float = 0) -> Any:
            value = raw.get(key)
            if value is None and optional:
                return None
            try:
                result = kind(value)
            except (TypeError, ValueError):
                what = "an integer" if kind is int else "a number"
                raise OrchestrationError(
                    f"config orchestrator.{key}: not {what}: {value!r}"
                ) from None
            if result < 0:
                raise OrchestrationError(f"config orchestrator.{key}: negative: {value!r}")
            if result < least:
                raise OrchestrationError(
                    f"config orchestrator.{key}: must be at least {least:g}: {value!r}"
                )
            return result

        command = raw.get("command")
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(word, str | int | float) for word in command)
        ):
            raise OrchestrationError(
                f"config orchestrator.command: expected a list of arguments, found {command!r}"
            )
        state_file = raw.get("state_file")
        if not state_file:
            raise OrchestrationError("config orchestrator.state_file: not set")
        return cls(
            enabled=bool(raw.get("enabled", True)),
            port=number("port", int),
            host=str(raw.get("host") or "0.0.0.0"),
            health_host=str(raw.get("health_host") or "127.0.0.1"),
            python=str(raw.get("python") or sys.executable),
            command=tuple(str(word) for word in command),
            gpu_memory_utilization=number("gpu_memory_utilization", float, optional=True),
            max_model_len=number("max_model_len", int, optional=True),
            start_timeout_s=number("start_timeout_s"),
            stop_timeout_s=number("stop_timeout_s"),
            lock_timeout_s=number("lock_timeout_s"),
            restart_backoff_s=number("restart_backoff_s"),
            poll_interval_s=number("poll_interval_s"),
            request_timeout_s=number("request_timeout_s", least=0.001),
            health_max_bytes=number("health_max_bytes", int, least=1024),
            log_max_bytes=number("log_max_bytes", int, least=4096),
            log_keep=number("log_keep", int),
            use_cgroup=bool(raw.get("use_cgroup", True)),
            health_paths=tuple(str(p) for p in raw.get("health_paths") or ("/health",)),
            models_path=str(raw.get("models_path") or "/v1/models"),
            state_file=Path(os.path.expanduser(str(state_file))).absolute(),
        )

    @property
    def lock_file(self) -> Path:
        # The chat proxy's lock: the state path with its suffix replaced by .lock.
        return self.state_file.with_suffix(".lock")

    @property
    def log_dir(self) -> Path:
        return self.state_file.parent / "logs"

    def require_enabled(self) -> None:
        if not self.enabled:
            raise OrchestrationError(
                "orchestration is disabled (orchestrator.enabled is false); "
                "nothing was started or stopped"
            )
