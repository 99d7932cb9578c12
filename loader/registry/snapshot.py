"""The merged snapshot as a load cache: when may it stand in for the layers?"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from loader.config import Config, cache_dir, registry_dir, write_cache_file
from loader.errors import RegistryError
from loader.fileio import Fingerprint, key_digest
from loader.literal import LIVE_OPENER, interpolates
from loader.registry.compose import RULES_VERSION, DynamicFields

Stat = Fingerprint


# A named tuple, not a dataclass: `list` imports this, and importing
# dataclasses (with inspect) costs it ~8 ms on Python 3.11.
class LayerFiles(NamedTuple):
    """Where one registry's three files are."""

    folder: Path
    curated: Path
    discovered: Path
    snapshot: Path


def layer_files_for(cfg: Config) -> LayerFiles:
    """Where the registry that ``cfg`` names keeps its three files."""
    folder = registry_dir(cfg)
    return LayerFiles(
        folder=folder,
        curated=folder / str(cfg.get("registry.curated")),
        discovered=folder / str(cfg.get("registry.discovered")),
        snapshot=folder / str(cfg.get("registry.snapshot")),
    )


# A live ``${...}`` (not one ``loader.literal`` escaped) with no nested ``${``.
_REFERENCE = re.compile(r"(?<!\\)(?:\\\\)*\$\{([^{}]*)\}")
_CONFIG_KEY = re.compile(r"[A-Za-z_][\w-]*(?:\.[\w-]+)*")
_ENV = re.compile(r"oc\.env:([A-Za-z_][A-Za-z0-9_]*)(?:,[^{}]*)?")

Inputs = list[tuple[str, str]]


def interpolation_inputs(texts: Iterable[str]) -> Inputs | None:
    """What the live interpolations in ``texts`` read, sorted: ``("config",
    KEY)`` for ``${a.b}`` and ``("env", NAME)`` for ``${oc.env:NAME[,default]}``.
    None when one reads anything else (another resolver, a nested or relative
    reference): then stats alone cannot confirm the snapshot."""
    found: set[tuple[str, str]] = set()
    for text in texts:
        if not interpolates(text):
            continue
        references = [m.group(1).strip() for m in _REFERENCE.finditer(text)]
        if len(references) != len(LIVE_OPENER.findall(text)):
            return None  # nested or unclosed
        for body in references:
            env = _ENV.fullmatch(body)
            if env is not None:
                found.add(("env", env.group(1)))
            elif _CONFIG_KEY.fullmatch(body):
                found.add(("config", body))
            else:
                return None
    return sorted(found)


def inputs_digest(cfg: Config, inputs: Inputs) -> str | None:
    """A digest of the values ``inputs`` read now (config values as this run
    resolves them, environment variables), or None when one does not resolve.
    Those values are in the snapshot already; nothing new is kept."""
    values: list[Any] = []
    for kind, name in inputs:
        if kind == "env":
            values.append(os.environ.get(name))
            continue
        try:
            values.append(cfg.get(name))
        except RegistryError:
            return None
    try:
        return key_digest(json.dumps([inputs, values], sort_keys=True))
    except (TypeError, ValueError):
        return None


def stat_stamp(path: Path) -> Stat | None:
    """What changes whenever a file's content may have (``loader.fileio.Fingerprint``)."""
    return Fingerprint.of_path(path)


class SnapshotStamps:
    """When the snapshot may stand in for the layers.

    After this process wrote (or confirmed) the snapshot as the composition of
    the current layers, it records the three files' stats, keyed by folder, in
    the user's cache. A later load whose stats all still match reads the
    snapshot instead of merging. Any change to any file (stat differs) or to
    the composition rules (fingerprint differs) sends loads back to the layers.

    Layers holding interpolations (importers write ``${paths.models}/…`` and
    ``${backends.ollama.port}``) compose to values that config and the
    environment decide, so their record also keeps which config keys and
    variables those read and a digest of their values; a load whose ``cfg``
    resolves them differently composes the layers again.
    """

    def __init__(
        self, files: LayerFiles, dynamic: DynamicFields, cfg: Config | None = None
    ) -> None:
        self.files = files
        self.cfg = cfg
        key = key_digest(str(files.folder.resolve()))
        self.path = cache_dir() / "snapshots" / f"{key}.json"
        rules = [RULES_VERSION, sorted(dynamic.exact), sorted(dynamic.prefixes)]
        rules += [files.curated.name, files.discovered.name, files.snapshot.name]
        self.fingerprint = key_digest(json.dumps(rules))

    def current(self) -> tuple[Any, ...]:
        files = self.files
        return (
            stat_stamp(files.curated),
            stat_stamp(files.discovered),
            stat_stamp(files.snapshot),
        )

    def _saved(self) -> dict[str, Any] | None:
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("fingerprint") != self.fingerprint:
            return None
        stats = saved.get("stats")
        return saved if isinstance(stats, list) and len(stats) == 3 else None

    def _saved_stats(self) -> list[Any] | None:
        saved = self._saved()
        return None if saved is None else saved["stats"]

    def matches(self, stats: tuple[Any, ...]) -> bool:
        if stats[2] is None:
            return False
        saved = self._saved()
        if saved is None or [list(s) if s else None for s in stats] != saved["stats"]:
            return False
        if "inputs" not in saved:
            return True
        inputs = saved.get("reads")
        if self.cfg is None or not isinstance(inputs, list):
            return False
        try:
            reads = [(str(kind), str(name)) for kind, name in inputs]
        except (TypeError, ValueError):
            return False
        return inputs_digest(self.cfg, reads) == saved["inputs"]

    def snapshot_unchanged(self) -> bool:
        """True when the snapshot is still the file this loader last wrote or
        confirmed (so nobody can have added entries to it by hand)."""
        current = stat_stamp(self.files.snapshot)
        saved = self._saved_stats()
        return current is not None and saved is not None and saved[2] == list(current)

    def record(self, reads: Inputs | None = None) -> None:
        """Record the files' stats now; ``reads``: what the layers'
        interpolations read (``interpolation_inputs``), when they hold any."""
        stats = [list(s) if s else None for s in self.current()]
        data: dict[str, Any] = {"fingerprint": self.fingerprint, "stats": stats}
        if reads:
            digest = None if self.cfg is None else inputs_digest(self.cfg, reads)
            if digest is None:
                return  # cannot be confirmed later: leave no record
            data["reads"] = [list(pair) for pair in reads]
            data["inputs"] = digest
        write_cache_file(self.path, data)
