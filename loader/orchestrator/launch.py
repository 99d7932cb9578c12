"""The vLLM launch command for one entry: an argument list, never a shell string."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from loader import logs
from loader.errors import OrchestrationError
from loader.orchestrator.settings import Settings
from loader.registry.schema import RegistryEntry

# Set by the orchestrator itself; an entry that sets them would move or rename
# the server behind the orchestrator's back.
RESERVED_FLAGS = ("--model", "--host", "--port", "--served-model-name")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class LaunchPlan:
    name: str
    served_id: str
    model_path: str
    argv: list[str]
    warnings: list[str]
    log_path: Path


def flag_name(word: str) -> str | None:
    """``--max-model-len`` for ``--max-model-len`` or ``--max-model-len=4096``."""
    return word.split("=", 1)[0] if word.startswith("--") else None


def served_id_of(entry: RegistryEntry) -> str:
    """The id vLLM serves: ``served_model_id`` unless absent (or the old
    ``"None"`` placeholder), else the logical name, as the chat proxy does."""
    return (entry.served_id or "").strip() or entry.name


def model_path_of(entry: RegistryEntry) -> str:
    """``backend_config.model_path``; ``download_path`` when only that exists
    on disk. A path that is not on disk may still be a hub id for vLLM."""
    configured = entry.backend_config.model_path
    download = entry.download_path
    for candidate in (configured, download):
        if candidate and os.path.exists(os.path.expanduser(candidate)):
            return os.path.expanduser(candidate)
    if configured:
        return configured
    if download:
        return download
    raise OrchestrationError(
        f"entry {entry.name!r}: backend_config.model_path: not set (nor download_path)"
    )


def build_launch(entry: RegistryEntry, settings: Settings) -> LaunchPlan:
    """The full argv for ``entry``; raises before anything is stopped or started."""
    served_id = served_id_of(entry)
    model_path = model_path_of(entry)
    values = {
        "python": settings.python,
        "model_path": model_path,
        "host": settings.host,
        "port": str(settings.port),
        "served_id": served_id,
    }
    argv = [_fill(word, values) for word in settings.command]

    extra = [str(word) for word in entry.backend_config.extra_args]
    extra_flags = [flag for flag in map(flag_name, extra) if flag]
    for flag in RESERVED_FLAGS:
        if flag in extra_flags:
            raise OrchestrationError(
                f"entry {entry.name!r}: backend_config.extra_args: {flag} is set by the "
                "orchestrator (orchestrator.port, orchestrator.host, the model path and "
                "served id); remove it from the entry"
            )
    memory = settings.gpu_memory_utilization
    if memory is not None and "--gpu-memory-utilization" not in extra_flags:
        argv += ["--gpu-memory-utilization", f"{memory:g}"]
    if settings.max_model_len is not None and "--max-model-len" not in extra_flags:
        argv += ["--max-model-len", str(settings.max_model_len)]
    template = entry.chat_template.path
    warnings = []
    if template and "--chat-template" not in extra_flags:
        template = os.path.expanduser(template)
        if Path(template).is_file():
            argv += ["--chat-template", template]
        else:
            # A path recorded on another host: vLLM falls back to the model's
            # own template; `audit` reports it (missing-path).
            warnings.append(
                f"entry {entry.name!r}: chat_template.path: file not found: {template}; "
                "starting without --chat-template"
            )
    argv += extra

    warnings += [
        f"entry {entry.name!r}: backend_config.extra_args repeats {flag}; "
        "vLLM uses the last occurrence"
        for flag in dict.fromkeys(extra_flags)
        if extra_flags.count(flag) > 1
    ]
    log_path = log_path_for(entry.name, settings.log_dir)
    return LaunchPlan(entry.name, served_id, model_path, argv, warnings, log_path)


def _fill(word: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            known = ", ".join("{" + k + "}" for k in values)
            raise OrchestrationError(
                f"config orchestrator.command: unknown placeholder {match.group(0)} in "
                f"{word!r} (known: {known})"
            )
        return values[key]

    return _PLACEHOLDER.sub(replace, word)


def log_path_for(name: str, log_dir: Path) -> Path:
    """One log per model; names hold parentheses and dots, never a slash."""
    safe = re.sub(r"[^A-Za-z0-9._()+-]", "_", name).lstrip(".") or "model"
    return log_dir / f"{safe}.log"


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of a log (from its last 64 KiB)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 65536))
            text = handle.read().decode("utf-8", "replace")
    except OSError as exc:
        logs.warning(__name__, f"{path}: cannot read the log: {exc.strerror}")
        return []
    return text.splitlines()[-lines:]
