"""Would this run's config compose another snapshot than the default config's?

The merged snapshot is shared: legacy readers read it, and later loads use it
as a cache. A run with config overrides (``list backends.vllm.port=8001``,
a doit or Hydra app run with overrides) may write it only when its config
composes the same snapshot as the default configuration would. The snapshot
depends on the config through:

- the composition rules: ``registry.dynamic_fields`` and the three file names;
- the values the layers interpolate (``${backends.vllm.port}``); ``oc.env``
  reads the same environment in both, so only config keys count.

An override of anything else (``registry.dir``, ``profile=ci``,
``hashing.workers``) changes no byte of the snapshot and is no obstacle.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from loader.errors import RegistryError
from loader.literal import interpolates
from loader.registry.compose import iter_interpolated

if TYPE_CHECKING:
    from loader.config import Config
    from loader.registry.compose import Sources

RULE_KEYS = (
    "registry.dynamic_fields",
    "registry.curated",
    "registry.discovered",
    "registry.snapshot",
)
_EXPRESSION = re.compile(r"\$\{([^${}]*)\}")
_NODE = re.compile(r"[A-Za-z_][\w-]*(\.[\w-]+)*")
_ENV = re.compile(r"oc\.env:[^${}]*")
_UNRESOLVED = object()


def _layer_references(sources: Sources) -> set[str] | None:
    """Config keys the layers interpolate, or None when an expression is more
    than a plain key or ``oc.env`` (then the whole config counts)."""
    keys: set[str] = set()
    for layer in (sources.curated, sources.discovered):
        if not layer.has_interpolation:
            continue
        for entry in layer.entries:
            for _, text in iter_interpolated(entry):
                if not interpolates(text):
                    continue  # outside text stored literally: resolves to itself
                stripped = _EXPRESSION.sub("", text)
                if "${" in stripped:
                    return None  # nested or unterminated: compare everything
                for inner in _EXPRESSION.findall(text):
                    inner = inner.strip()
                    if _NODE.fullmatch(inner):
                        keys.add(inner)
                    elif not _ENV.fullmatch(inner):
                        return None
    return keys


# Groups that cannot reach an entry's value: where the registry and the
# pipeline's state are (RULE_KEYS cover the rest of ``registry``), and Hydra's.
_NOT_VALUES = {"registry", "pipeline", "hydra"}


def _groups(cfg: Config) -> Iterator[str]:
    # The whole config, less the operation's own arguments (top-level scalars
    # and lists such as name, role, entry_overrides): each group as a key.
    for key, value in cfg.raw.items():
        if isinstance(value, dict) and key not in _NOT_VALUES:
            yield key


def _value(cfg: Config, key: str) -> Any:
    try:
        return cfg.get(key, _UNRESOLVED)
    except RegistryError:
        return _UNRESOLVED


def snapshot_difference(cfg: Config, reference: Config, sources: Sources) -> str | None:
    """The first config key whose value makes ``cfg`` compose another snapshot
    than ``reference`` (the default configuration), or None when they agree."""
    keys: list[str] = list(RULE_KEYS)
    referenced = _layer_references(sources)
    if referenced is None:
        keys += sorted(set(_groups(cfg)) | set(_groups(reference)))
    else:
        keys += sorted(referenced)
    for key in keys:
        mine, theirs = _value(cfg, key), _value(reference, key)
        if mine is _UNRESOLVED or theirs is _UNRESOLVED or mine != theirs:
            return key
    return None
