"""Choosing a model to talk to: endpoints, served ids, capability checks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import CapabilityError
from .registry import Registry, default_registry
from .schema import RegistryEntry, canonical_capability

if TYPE_CHECKING:
    from .config import Config

__all__ = ["CapabilityError", "SelectedModel", "endpoint_url", "select_model"]


@dataclass(frozen=True)
class SelectedModel:
    """What a client needs to call a model."""

    logical_name: str
    endpoint_url: str
    backend: str
    internal_model_id: str
    capabilities: dict[str, bool]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["endpoint"] = data.pop("endpoint_url")
        return {
            key: data[key]
            for key in ("logical_name", "endpoint", "backend", "internal_model_id", "capabilities")
        }


def backend_default_port(cfg: Config, backend: str) -> int:
    backends = cfg.get("backends") or {}
    chosen = backends.get(backend) or backends.get("default") or {}
    return int(chosen.get("port", 8000))


def endpoint_url(entry: RegistryEntry, cfg: Config) -> str:
    """``base_url`` if set; else ``host`` if it has a scheme; else
    ``http://{host or localhost}:{port or backend default}/v1``. A trailing
    ``/`` is dropped, so a client appending ``/chat/completions`` gets no ``//``."""
    config = entry.backend_config
    base_url = (config.base_url or "").strip().rstrip("/")
    if base_url:
        return base_url
    host = (config.host or "").strip().rstrip("/")
    if "://" in host:
        return host
    port = config.port or backend_default_port(cfg, entry.backend)
    return f"http://{host or 'localhost'}:{port}/v1"


def missing_capability(entry: RegistryEntry, wanted: Iterable[str]) -> str | None:
    """The first of ``wanted`` that ``entry`` lacks, as its canonical name;
    ``CapabilityError`` for a name that is no capability or synonym."""
    for name in wanted:
        canonical = canonical_capability(name)
        if canonical is None:
            raise CapabilityError(f"unknown capability {name!r}")
        if not entry.has_capability(canonical):
            return canonical
    return None


def select_model(
    name: str,
    require_capabilities: Iterable[str] | None = None,
    registry: Registry | None = None,
) -> SelectedModel:
    """Resolve a logical model name to its endpoint; ``CapabilityError`` if it
    lacks a required capability (synonyms such as ``vl`` are accepted)."""
    registry = registry or default_registry()
    entry = registry.get(name)
    missing = missing_capability(entry, require_capabilities or ())
    if missing:
        raise CapabilityError(f"model {name!r} lacks required capability {missing!r}")
    capabilities = entry.normalized_capabilities()
    return SelectedModel(
        logical_name=entry.name,
        endpoint_url=endpoint_url(entry, registry.cfg),
        backend=entry.backend,
        internal_model_id=entry.served_id or entry.name,
        capabilities=capabilities,
    )
