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
    ``http://{host or localhost}:{port or backend default}/v1``."""
    config = entry.backend_config
    if config.base_url:
        return config.base_url
    host = (config.host or "").strip()
    if "://" in host:
        return host
    port = config.port or backend_default_port(cfg, entry.backend)
    return f"http://{host or 'localhost'}:{port}/v1"


def select_model(
    name: str,
    require_capabilities: Iterable[str] | None = None,
    registry: Registry | None = None,
) -> SelectedModel:
    """Resolve a logical model name to its endpoint; ``CapabilityError`` if it
    lacks a required capability (synonyms such as ``vl`` are accepted)."""
    registry = registry or default_registry()
    entry = registry.get(name)
    capabilities = entry.normalized_capabilities()
    for wanted in require_capabilities or ():
        canonical = canonical_capability(wanted)
        if canonical is None:
            raise CapabilityError(f"unknown capability {wanted!r}")
        if not capabilities[canonical]:
            raise CapabilityError(f"model {name!r} lacks required capability {canonical!r}")
    return SelectedModel(
        logical_name=entry.name,
        endpoint_url=endpoint_url(entry, registry.cfg),
        backend=entry.backend,
        internal_model_id=entry.served_id or entry.name,
        capabilities=capabilities,
    )
