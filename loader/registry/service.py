"""Choosing a model to talk to: endpoints, served ids, capability checks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from loader.errors import CapabilityError
from loader.registry.core import Registry, default_registry
from loader.registry.schema import RegistryEntry, canonical_capability

if TYPE_CHECKING:
    from loader.config import Config

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
    lacks a required capability (synonyms such as ``vl`` are accepted).

    Cheap enough to call per request: the freshness check is a stat of the two
    layer files (an edit saved before the call is seen), and the answer comes
    from an index built once per loaded registry."""
    registry = registry or default_registry()
    entry = registry.get(name)
    prepared = _prepared(registry, entry)
    capabilities = prepared.capabilities
    for wanted in require_capabilities or ():
        canonical = canonical_capability(wanted)
        if canonical is None:
            raise CapabilityError(f"unknown capability {wanted!r}")
        if not capabilities[canonical]:
            raise CapabilityError(f"model {name!r} lacks required capability {canonical!r}")
    # A copy of the prepared answer with the caller's own capability map,
    # made without the frozen dataclass's per-field __setattr__ (a third of a call).
    selected = object.__new__(SelectedModel)
    fields = selected.__dict__
    fields.update(prepared.__dict__)
    fields["capabilities"] = dict(capabilities)
    return selected


def _prepared(registry: Registry, entry: RegistryEntry) -> SelectedModel:
    """``entry``'s selection, built once per loaded registry. Rebuilt when
    the entry object, its capabilities or its endpoint fields were replaced
    in memory since (``registry.prepared`` is emptied by every load)."""
    index = registry.prepared.setdefault("select_model", {})
    config = entry.backend_config
    key = (
        entry.capabilities,
        config,
        entry.backend,
        entry.served_model_id,
        config.port,
        config.host,
        config.base_url,
    )
    hit = index.get(entry.name)
    # Tuple equality tries identity first: a replaced dict or model compares by value.
    if hit is not None and hit[0] is entry and hit[1] == key:
        return hit[2]
    selected = SelectedModel(
        logical_name=entry.name,
        endpoint_url=endpoint_url(entry, registry.cfg),
        backend=entry.backend,
        internal_model_id=entry.served_id or entry.name,
        capabilities=entry.normalized_capabilities(),
    )
    index[entry.name] = (entry, key, selected)
    return selected
