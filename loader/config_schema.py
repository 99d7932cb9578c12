"""The configuration's schema, declared once: one frozen dataclass per group.

Each group of ``conf/`` is a class below; each field says its type and its
check (``Number``, ``Text``, ``Flag``, ``Items``, ``FilePath``, ``Value``).
``read_group`` reads a group's fields from the composed ``Config`` one key at
a time, so a broken interpolation in one key only stops the commands that
use that key, and raises the group's error in one line naming the key
(``config probe.rounds: must be a whole number > 0: 0``). The defaults live
in ``conf/`` (YAML); the few here are what a key missing from an older
``conf/`` falls back to, as before.

Code reads the groups as typed attributes of the config (``cfg.hashing.workers``,
``cfg.probe.max_age``), never by dotted strings. Plain dataclasses: reading a
cached config imports neither Hydra nor pydantic.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from loader.errors import ImporterError, OrchestrationError, OverrideError, RegistryLoadError


class ConfigKeys(Protocol):
    """What a group is read from: ``loader.config.Config`` (its ``get``)."""

    def get(self, key: str, default: Any = None) -> Any: ...


_MISSING: Any = object()
G = TypeVar("G")


# --- checks -------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A number of at least ``least`` (above it when ``above``; any when None).

    ``strict``: the value must already be a number (YAML), and one message says
    the rule (``must be a whole number ≥ 0``). Otherwise it is converted
    (``int("24001")``: values from environment variables are strings) and the
    message says what failed (``not an integer``, ``negative``, ``must be at
    least 4096``). ``optional``: null is allowed. ``default``: what a missing
    (or, with ``or_default``, a null or zero) value becomes.
    """

    whole: bool = False
    least: float | None = 0
    above: bool = False
    strict: bool = False
    optional: bool = False
    default: Any = _MISSING
    or_default: bool = False
    as_written: bool = False  # 604800 stays an int, 0.5 a float

    def read(self, key: str, value: Any, error: type[Exception]) -> Any:
        if value is _MISSING or (self.or_default and not value):
            value = None if self.default is _MISSING else self.default
        if value is None and self.optional:
            return None
        kind = int if self.whole else float
        if self.strict:
            fits = isinstance(value, int | float) and not isinstance(value, bool)
            least = self.least or 0
            fits = fits and (value > least if self.above else value >= least)
            if not fits or (self.whole and value != int(value)):
                what = "a whole number" if self.whole else "a number"
                bound = f"{'>' if self.above else '≥'} {least:g}"
                raise error(f"config {key}: must be {what} {bound}: {value!r}")
            return kind(value)
        try:
            result = kind(value)
        except (TypeError, ValueError):
            what = "an integer" if self.whole else "a number"
            raise error(f"config {key}: not {what}: {value!r}") from None
        if self.least is None:
            return result
        if result < 0:
            raise error(f"config {key}: negative: {value!r}")
        if result < self.least or (self.above and result == self.least):
            bound = "above" if self.above else "at least"
            raise error(f"config {key}: must be {bound} {self.least:g}: {value!r}")
        return value if self.as_written and isinstance(value, int | float) else result


@dataclass(frozen=True)
class Text:
    """A string. ``required``: an empty one is refused; ``fallback``: what a
    missing, null or empty one becomes; ``optional``: null stays None."""

    required: bool = False
    fallback: Any = _MISSING
    optional: bool = False

    def read(self, key: str, value: Any, error: type[Exception]) -> Any:
        value = None if value is _MISSING else value
        if value is None or value == "":
            if self.fallback is not _MISSING:
                return self.fallback
            if self.optional and not self.required:
                return None
        if self.required and not str(value or "").strip():
            raise error(f"config {key}: empty")
        return str(value)


@dataclass(frozen=True)
class FilePath:
    """A path (``~`` expanded); ``absolute``: taken from the working folder.
    A missing or empty one is ``None`` unless ``required``."""

    required: bool = False
    absolute: bool = False

    def read(self, key: str, value: Any, error: type[Exception]) -> Path | None:
        if value is _MISSING or value is None or value == "":
            if self.required:
                raise error(f"config {key}: not set")
            return None
        path = Path(os.path.expanduser(str(value)))
        return path.absolute() if self.absolute else path


@dataclass(frozen=True)
class Flag:
    """True or false; a missing one is ``default``."""

    default: bool = False

    def read(self, key: str, value: Any, error: type[Exception]) -> bool:
        return self.default if value is _MISSING else bool(value)


@dataclass(frozen=True)
class Items:
    """A list of scalars, as a tuple of strings. ``single``: a lone string is a
    list of one; ``required``: a missing or empty list is refused;
    ``default``: what a missing or empty one becomes."""

    required: bool = False
    single: bool = False
    default: tuple[str, ...] = ()

    def read(self, key: str, value: Any, error: type[Exception]) -> tuple[str, ...]:
        if self.single and isinstance(value, str):
            value = [value]
        if not self.required and (value is _MISSING or not value):
            return self.default
        if not isinstance(value, list | tuple) or not value:
            raise error(f"config {key}: expected a list of arguments, found {value!r}")
        if not all(isinstance(item, str | int | float) for item in value):
            raise error(f"config {key}: expected a list of arguments, found {value!r}")
        return tuple(str(item) for item in value)


@dataclass(frozen=True)
class Value:
    """Any value, as composed (a mapping, a list); a missing or null one is ``default``."""

    default: Any = None

    def read(self, key: str, value: Any, error: type[Exception]) -> Any:
        return self.default if value is _MISSING or value is None else value


def setting(check: Any, key: str | None = None) -> Any:
    """A field of a group: its check, and its key below the group when that
    differs from the field's name (``rediscover.depth``)."""
    return field(metadata={"check": check, "key": key})


def read_group(cls: type[G], cfg: ConfigKeys) -> G:
    """Read and check one group of the composed config."""
    # Every group below is a dataclass with GROUP and ERROR; G is left unbound
    # so that Config.group takes any of them without a protocol of its own.
    group: str = cls.GROUP  # type: ignore[attr-defined]
    error: type[Exception] = cls.ERROR  # type: ignore[attr-defined]
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        key = f"{group}.{f.metadata['key'] or f.name}"
        values[f.name] = f.metadata["check"].read(key, cfg.get(key, _MISSING), error)
    return cls(**values)


# --- the groups -----------------------------------------------------------------


@dataclass(frozen=True)
class RegistryConfig:
    """``registry``: where the layer files are, and how they merge."""

    GROUP: ClassVar[str] = "registry"
    ERROR: ClassVar[type[Exception]] = RegistryLoadError

    dir: Path = setting(FilePath(required=True))
    curated: str = setting(Text(required=True))
    discovered: str = setting(Text(required=True))
    snapshot: str = setting(Text(required=True))
    dynamic_fields: tuple[str, ...] = setting(Items())
    host: str | None = setting(Text(optional=True))
    refresh_snapshot_on_load: bool = setting(Flag())
    max_layer_bytes: int = setting(Number(whole=True, default=256 << 20, or_default=True))


@dataclass(frozen=True)
class PathsConfig:
    """``paths``: where models live on this host."""

    GROUP: ClassVar[str] = "paths"
    ERROR: ClassVar[type[Exception]] = RegistryLoadError

    models: str | list[str] | None = setting(Value())  # one folder, or several
    ollama_models: Path | None = setting(FilePath())

    @property
    def model_roots(self) -> tuple[str, ...]:
        """``models`` as a tuple of folders."""
        roots = self.models or []
        return (roots,) if isinstance(roots, str) else tuple(str(r) for r in roots)


@dataclass(frozen=True)
class HashingConfig:
    """``hashing``: the hashing engine and its stat cache."""

    GROUP: ClassVar[str] = "hashing"
    ERROR: ClassVar[type[Exception]] = RegistryLoadError

    # 0 (or less): one thread per core; a chunk under 64 KiB reads 64 KiB.
    workers: int = setting(Number(whole=True, least=None, default=0, or_default=True))
    chunk_bytes: int = setting(Number(whole=True, least=None, default=512 << 10, or_default=True))
    cache_file: str = setting(Text(required=True))


@dataclass(frozen=True)
class PipelineConfig:
    """``pipeline``: the doit graph's state."""

    GROUP: ClassVar[str] = "pipeline"
    ERROR: ClassVar[type[Exception]] = RegistryLoadError

    state_dir: Path | None = setting(FilePath())


@dataclass(frozen=True)
class PerformanceConfig:
    """``performance``: the rolling performance summaries."""

    GROUP: ClassVar[str] = "performance"
    ERROR: ClassVar[type[Exception]] = RegistryLoadError

    window: int = setting(Number(whole=True, default=50, or_default=True))
    samples_file: Path | None = setting(FilePath())


@dataclass(frozen=True)
class ImportersConfig:
    """``importers``: import-ollama, import-dir, rediscover."""

    GROUP: ClassVar[str] = "importers"
    ERROR: ClassVar[type[Exception]] = ImporterError

    max_json_bytes: int = setting(Number(whole=True, default=16 << 20, or_default=True))
    refresh_fields: tuple[str, ...] = setting(Items())
    rediscover_depth: int = setting(
        Number(whole=True, default=0, or_default=True), "rediscover.depth"
    )
    rediscover_backend: str = setting(Text(fallback="vllm"), "rediscover.backend")
    chat_templates_dir: Path | None = setting(FilePath(absolute=True), "chat_templates.dir")
    ollama_url: str | None = setting(Text(optional=True), "ollama.url")


@dataclass(frozen=True)
class OllamaImportConfig:
    """``importers.ollama``: the bounds of every read of a running Ollama."""

    GROUP: ClassVar[str] = "importers.ollama"
    ERROR: ClassVar[type[Exception]] = ImporterError

    timeout_s: float = setting(Number(strict=True, above=True, default=10.0))
    connect_timeout_s: float = setting(Number(strict=True, above=True, default=5.0))
    max_bytes: int = setting(Number(whole=True, strict=True, above=True, default=32 << 20))
    overall_s: float = setting(Number(strict=True, above=True, default=600.0))
    workers: int = setting(Number(whole=True, strict=True, above=True, default=8))


@dataclass(frozen=True)
class ProbeConfig:
    """``probe``: the vision probe (``conf/probe/default.yaml``)."""

    GROUP: ClassVar[str] = "probe"
    ERROR: ClassVar[type[Exception]] = RegistryLoadError

    timeout_s: float = setting(Number(strict=True, above=True))
    connect_timeout_s: float = setting(Number(strict=True, above=True))
    retries: int = setting(Number(whole=True, strict=True))
    max_tokens: int = setting(Number(whole=True, strict=True, above=True))
    rounds: int = setting(Number(whole=True, strict=True, above=True))
    # Settings added later: a config written before them still loads.
    max_bytes: int = setting(Number(whole=True, strict=True, above=True, default=4 << 20))
    max_image_bytes: int = setting(Number(whole=True, strict=True, above=True, default=32 << 20))
    prompt: str = setting(Text(required=True))
    image_prompt: str = setting(Text(required=True))


@dataclass(frozen=True)
class ProbeScheduleConfig:
    """``probe.max_age``: when a probe is old enough to redo (null: never).
    Apart from ``ProbeConfig``, so a bad value stops only what schedules probes."""

    GROUP: ClassVar[str] = "probe"
    ERROR: ClassVar[type[Exception]] = RegistryLoadError

    max_age: float | None = setting(Number(optional=True, default=None, as_written=True))


@dataclass(frozen=True)
class OrchestratorConfig:
    """``orchestrator``: starting, checking and stopping the vLLM server."""

    GROUP: ClassVar[str] = "orchestrator"
    ERROR: ClassVar[type[Exception]] = OrchestrationError

    enabled: bool = setting(Flag(default=True))
    desired: str | None = setting(Text(optional=True))  # the model doit keeps active
    port: int = setting(Number(whole=True))
    host: str = setting(Text(fallback="0.0.0.0"))
    health_host: str = setting(Text(fallback="127.0.0.1"))
    python: str = setting(Text(fallback=sys.executable))
    command: tuple[str, ...] = setting(Items(required=True))
    gpu_memory_utilization: float | None = setting(Number(optional=True))
    max_model_len: int | None = setting(Number(whole=True, optional=True))
    start_timeout_s: float = setting(Number())
    stop_timeout_s: float = setting(Number())
    lock_timeout_s: float = setting(Number())
    restart_backoff_s: float = setting(Number())
    poll_interval_s: float = setting(Number())
    request_timeout_s: float = setting(Number(least=0.001))
    health_max_bytes: int = setting(Number(whole=True, least=1024))
    log_max_bytes: int = setting(Number(whole=True, least=4096))
    log_keep: int = setting(Number(whole=True))
    use_cgroup: bool = setting(Flag(default=True))
    health_paths: tuple[str, ...] = setting(Items(default=("/health",)))
    models_path: str = setting(Text(fallback="/v1/models"))
    state_file: Path = setting(FilePath(required=True, absolute=True))


@dataclass(frozen=True)
class ProfileConfig:
    """``profile``: interactive use (``default``) or scheduled jobs (``ci``)."""

    GROUP: ClassVar[str] = "profile"
    ERROR: ClassVar[type[Exception]] = RegistryLoadError

    name: str = setting(Text(fallback="default"))
    progress: Any = setting(Value(default="auto"))  # "auto" or false
    log_format: str = setting(Text(fallback="text"))
    strict_integrity: bool = setting(Flag())
    import_ollama: bool = setting(Flag())
    rediscover: bool = setting(Flag())
    report: Path | None = setting(FilePath())
    summary: Path | None = setting(FilePath())


@dataclass(frozen=True)
class BackendsCheckConfig:
    """``backends_check``: the bounds of ``show-backends``' one call per endpoint."""

    GROUP: ClassVar[str] = "backends_check"
    ERROR: ClassVar[type[Exception]] = OverrideError

    timeout_s: float = setting(Number(above=True))
    connect_timeout_s: float = setting(Number(above=True))
    max_bytes: int = setting(Number(whole=True, above=True))


@dataclass(frozen=True)
class RolesConfig:
    """``roles``: the capabilities each role needs."""

    GROUP: ClassVar[str] = "roles"
    ERROR: ClassVar[type[Exception]] = RegistryLoadError

    default_capabilities: dict[str, list[str]] = setting(Value(default={}))
