"""The composed configuration: Hydra composes, a stat-keyed cache remembers.

Importing Hydra and composing costs about 0.3 s here, more than a whole
``list`` may take. Hydra's result (unresolved, so ``oc.env`` stays live) is
therefore cached as JSON keyed by the conf files' stats and the overrides;
only a miss pays for Hydra. Resolved values are cached beside it with the
environment variables they read, so a warm start needs no OmegaConf either.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from loader.errors import OverrideError, RegistryLoadError
from loader.fileio import Fingerprint, key_digest

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from loader.config_schema import (
        BackendsCheckConfig,
        HashingConfig,
        ImportersConfig,
        OllamaImportConfig,
        OrchestratorConfig,
        PathsConfig,
        PerformanceConfig,
        PipelineConfig,
        ProbeConfig,
        ProbeScheduleConfig,
        ProfileConfig,
        RegistryConfig,
        RolesConfig,
    )

CONFIG_NAME = "config"
_CACHE_FORMAT = 2


def conf_dir() -> Path:
    """The folder holding ``config.yaml``: inside the package when installed
    from a wheel, at the repository root in a checkout."""
    env = os.environ.get("IMAGEWORKS_LOADER_CONF")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / f"{CONFIG_NAME}.yaml").is_file():
            return candidate
    raise RegistryLoadError(f"{here.parent / 'conf'}: config.yaml not found")


def cache_dir() -> Path:
    base = os.environ.get("IMAGEWORKS_LOADER_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "imageworks-loader"


def _cache_key(conf: Path, overrides: Sequence[str]) -> str:
    parts = [str(_CACHE_FORMAT), str(conf)]
    for root, dirs, files in os.walk(conf):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            size, mtime_ns, ctime_ns, ino = Fingerprint.of(os.stat(path))
            parts.append(f"{path}\0{size}\0{mtime_ns}\0{ctime_ns}\0{ino}")
    parts.append(json.dumps(list(overrides)))
    return key_digest(*parts)


def compose_with_hydra(overrides: Sequence[str]) -> dict[str, Any]:
    """Compose ``conf/`` with Hydra and return it unresolved as plain data."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
            cfg = compose(CONFIG_NAME, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise OverrideError(f"config override: {hydra_reason(exc)}") from None
    # A DictConfig converts to a dict, keyed by strings (Hydra's config keys).
    data = cast("dict[str, Any]", OmegaConf.to_container(cfg, resolve=False))
    data.pop("hydra", None)
    return data


G = TypeVar("G")


class _Group(Generic[G]):
    """A group of the config as its typed, checked schema (``loader.config_schema``),
    read on first use and kept."""

    def __init__(self, schema: str) -> None:
        self.schema = schema

    def __get__(self, cfg: Config | None, owner: type | None = None) -> G:
        if cfg is None:
            # On the class (Config.paths), the descriptor itself, as property does.
            return self  # type: ignore[return-value]
        import loader.config_schema

        return cfg.group(getattr(loader.config_schema, self.schema))


class Config:
    """The composed config: raw (as Hydra composed it) and resolved.

    Code reads it through the schema's groups (``cfg.hashing.workers``,
    ``cfg.probe.rounds``: ``loader/config_schema.py``); ``get("registry.dir")``
    reads one resolved value by its dotted key. Resolution is cached with the
    environment variables it read, so a warm start needs no OmegaConf.
    """

    registry: _Group[RegistryConfig] = _Group("RegistryConfig")
    paths: _Group[PathsConfig] = _Group("PathsConfig")
    hashing: _Group[HashingConfig] = _Group("HashingConfig")
    pipeline: _Group[PipelineConfig] = _Group("PipelineConfig")
    performance: _Group[PerformanceConfig] = _Group("PerformanceConfig")
    importers: _Group[ImportersConfig] = _Group("ImportersConfig")
    ollama_import: _Group[OllamaImportConfig] = _Group("OllamaImportConfig")
    probe: _Group[ProbeConfig] = _Group("ProbeConfig")
    probe_schedule: _Group[ProbeScheduleConfig] = _Group("ProbeScheduleConfig")
    orchestrator: _Group[OrchestratorConfig] = _Group("OrchestratorConfig")
    profile: _Group[ProfileConfig] = _Group("ProfileConfig")
    backends_check: _Group[BackendsCheckConfig] = _Group("BackendsCheckConfig")
    roles: _Group[RolesConfig] = _Group("RolesConfig")

    def __init__(
        self,
        raw: dict[str, Any],
        resolved_data: dict[str, Any] | None = None,
        overrides: Sequence[str] | None = None,
    ) -> None:
        self.raw = raw
        self._resolved = resolved_data
        self._omegaconf: DictConfig | None = None
        # The Hydra overrides it was composed with: () is the default
        # configuration; None is unknown (composed elsewhere, e.g. by Hydra).
        self.overrides: tuple[str, ...] | None = None if overrides is None else tuple(overrides)
        self._groups: dict[type, Any] = {}

    @classmethod
    def from_omegaconf(cls, cfg: DictConfig) -> Config:
        from omegaconf import OmegaConf

        # A DictConfig converts to a dict, keyed by strings (Hydra's config keys).
        raw = cast("dict[str, Any]", OmegaConf.to_container(cfg, resolve=False))
        raw.pop("hydra", None)
        return cls(raw)

    @property
    def omegaconf(self) -> DictConfig:
        if self._omegaconf is None:
            from omegaconf import OmegaConf

            self._omegaconf = OmegaConf.create(self.raw)
        return self._omegaconf

    @property
    def resolved(self) -> dict[str, Any]:
        if self._resolved is None:
            check_expansion(self.raw)
            self._resolved = resolve_all(self.omegaconf)
        return self._resolved

    @property
    def fully_resolved(self) -> bool:
        return not _has_unresolved(self.resolved)

    def group(self, schema: type[G]) -> G:
        """One group of the config, read and checked by its schema class."""
        found = self._groups.get(schema)
        if found is None:
            from loader.config_schema import read_group

            found = self._groups[schema] = read_group(schema, self)
        return found

    def get(self, key: str, default: Any = None) -> Any:
        """A resolved value; a key whose interpolation fails raises here,
        so a broken key only stops the commands that use it."""
        node: Any = self.resolved
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        problem = _first_unresolved(node)
        if problem is not None:
            where, message = problem
            raise RegistryLoadError(f"config {'.'.join([key, *where])}: {message}")
        return node


class _Unresolved:
    """Stands for a config value whose interpolation failed."""

    def __init__(self, message: str) -> None:
        self.message = message


def _first_unresolved(node: Any, where: tuple[str, ...] = ()) -> tuple[tuple[str, ...], str] | None:
    if isinstance(node, _Unresolved):
        return where, node.message
    if isinstance(node, dict):
        for key, value in node.items():
            found = _first_unresolved(value, (*where, str(key)))
            if found:
                return found
    return None


def _has_unresolved(node: Any) -> bool:
    return _first_unresolved(node) is not None


def omegaconf_reason(exc: Exception) -> str:
    """An OmegaConf error as one short line (it appends full_key/object_type lines)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return "resolves in a loop" if "Recursive interpolation" in first else first


def hydra_reason(exc: Exception) -> str:
    """A Hydra error as one line, without its config search path and doc links."""
    text = str(exc).split("Config search path")[0]
    text = re.sub(r":\s*\n\s+", ": ", text)  # "options:\n\tci\n\tdefault" on one line
    text = re.sub(r"\n[ \t]+", ", ", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("See https://")]
    punctuated = [line if line.endswith((".", ":", ";")) else line + ";" for line in lines]
    return " ".join(punctuated).rstrip(";") or type(exc).__name__


# OmegaConf re-resolves a reference at every use, so ``b1=${b0}${b0}``,
# ``b2=${b1}${b1}`` ... doubles the work per level (15 s at 16 levels).
# Real configs resolve a handful of references per value.
MAX_RESOLVE_STEPS = 10_000
MAX_RESOLVED_CHARS = 1 << 20
_NODE_REF = re.compile(r"\$\{([^${}:]+)\}")


def check_expansion(raw: dict[str, Any]) -> None:
    """Refuse a config whose interpolations expand beyond the caps above,
    before OmegaConf spends exponential time resolving it."""
    strings: dict[str, str] = {}

    def flatten(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                flatten(value, f"{prefix}{key}.")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                flatten(value, f"{prefix}{index}.")
        elif isinstance(node, str):
            strings[prefix[:-1]] = node

    flatten(raw, "")
    cost: dict[str, tuple[int, int]] = {}  # key -> (resolve steps, resolved length)

    def measure(key: str, active: frozenset[str]) -> tuple[int, int]:
        if key in cost:
            return cost[key]
        text = strings.get(key)
        if text is None or key in active:  # not a string, or a loop OmegaConf reports
            return (1, 0)
        if len(active) > 100:  # a chain this long is refused like a blow-up
            return (MAX_RESOLVE_STEPS + 1, 0)
        steps, length = 1, len(_NODE_REF.sub("", text))
        for ref in _NODE_REF.findall(text):
            ref_steps, ref_length = measure(ref.strip(), active | {key})
            steps, length = steps + ref_steps, length + ref_length
        cost[key] = (steps, length)
        return steps, length

    for key in strings:
        steps, length = measure(key, frozenset())
        if steps > MAX_RESOLVE_STEPS or length > MAX_RESOLVED_CHARS:
            raise RegistryLoadError(
                f"config {key}: interpolation expands too far ({steps} references, "
                f"{length} characters; limits {MAX_RESOLVE_STEPS} and {MAX_RESOLVED_CHARS}): "
                "values that repeat other values; refusing to resolve it"
            )


def resolve_all(cfg: DictConfig) -> dict[str, Any]:
    """Every value resolved; one that cannot be becomes ``_Unresolved``."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return cast("dict[str, Any]", OmegaConf.to_container(cfg, resolve=True))
    except OmegaConfBaseException:
        pass

    def walk(node: Any) -> Any:
        result = {}
        for key in node:
            try:
                value = node[key]
                if OmegaConf.is_dict(value):
                    result[key] = walk(value)
                elif OmegaConf.is_config(value):
                    result[key] = OmegaConf.to_container(value, resolve=True)
                else:
                    result[key] = value
            except OmegaConfBaseException as exc:
                result[key] = _Unresolved(omegaconf_reason(exc))
        return result

    return walk(cfg)


# ``${oc.env:NAME...}`` is the only resolver whose result the cache can key on.
_ENV_REF = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)")
_ANY_RESOLVER = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*:")


def _env_dependencies(raw: dict[str, Any]) -> list[str] | None:
    """Env variables the resolution reads, or None if it uses other resolvers."""
    text = json.dumps(raw)
    if any(name != "oc.env" for name in _ANY_RESOLVER.findall(text)):
        return None
    return sorted(set(_ENV_REF.findall(text)))


def load_config(overrides: Sequence[str] = ()) -> Config:
    """The composed config for these Hydra overrides (``key=value`` words)."""
    conf = conf_dir()
    key = _cache_key(conf, overrides)
    cache_file = cache_dir() / f"config-{key}.json"
    try:
        cached = json.loads(cache_file.read_text(encoding="utf-8"))
        raw = cached["raw"]
    except (OSError, ValueError, KeyError, TypeError):
        cached, raw = {}, compose_with_hydra(overrides)
    env_names = _env_dependencies(raw)
    if env_names is None:
        return Config(raw, overrides=overrides)
    env = {name: os.environ.get(name) for name in env_names}
    if cached.get("env") == env and isinstance(cached.get("resolved"), dict):
        return Config(raw, cached["resolved"], overrides=overrides)
    config = Config(raw, overrides=overrides)
    if config.fully_resolved:
        write_cache_file(cache_file, {"raw": raw, "env": env, "resolved": config.resolved})
    return config


def write_cache_file(path: Path, data: Any) -> None:
    """Store JSON in the user's cache, atomically, ignoring failures: a cache
    only saves time, and a read-only or full cache folder must not stop a command."""
    from loader.fileio import atomic_write_bytes

    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(data).encode("utf-8"))


def registry_dir(cfg: Config) -> Path:
    return Path(os.path.expanduser(str(cfg.get("registry.dir"))))
