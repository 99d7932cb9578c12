"""The doit task graph's input: the composed config, the registry, each model's files.

``build_graph`` composes the config and reads the registry once and works out
which files each model is made of; ``loader.pipeline.tasks`` and
``loader.pipeline.operation_tasks`` turn a ``Graph`` into tasks.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loader.config import Config, load_config
from loader.errors import ArtifactError
from loader.integrity.hashing import ArtifactSet, resolve_artifact_set
from loader.logs import use_config
from loader.registry.snapshot import LayerFiles, layer_files_for

if TYPE_CHECKING:
    from loader.registry.core import Registry

# invoke(operation, arguments, registry) -> an Invocation (loader.operations.invoke)
Invoker = Callable[[str, Mapping[str, Any], Callable[[], "Registry"]], Any]


def doit_variables(argv: Sequence[str] | None = None) -> dict[str, str]:
    """doit's ``key=value`` command-line variables, through its public
    ``get_var``: the names are the words doit takes as variables (not an
    option, holding ``=``), the values what doit recorded for them."""
    from doit import get_var

    words = sys.argv[1:] if argv is None else argv
    names = dict.fromkeys(w.split("=", 1)[0] for w in words if not w.startswith("-") and "=" in w)
    variables = {name: get_var(name) for name in names}
    return {name: value for name, value in variables.items() if value is not None}


def overrides_from_doit_vars(variables: Mapping[str, str] | None = None) -> list[str]:
    """Hydra overrides from doit's ``key=value`` words: ``overrides="a=1 b=2"``
    and any other ``key=value`` (``doit registry.dir=/srv/configs``).
    ``variables``: by default, those of the running doit (``doit_variables``)."""
    if variables is None:
        variables = doit_variables()
    words = shlex.split(variables.get("overrides", ""))
    return words + [f"{key}={value}" for key, value in variables.items() if key != "overrides"]


@dataclass
class Graph:
    """One composed config and registry, and what the tasks need from them.

    ``entries`` are plain data: when the snapshot is confirmed current they
    are read from it without pydantic, so a no-op ``doit`` costs little more
    than doit itself. ``registry`` is created on first use, by an action."""

    config: Config
    files: LayerFiles
    entries: dict[str, dict[str, Any]]
    # name -> its files, or why it has none on this host
    artifacts: dict[str, ArtifactSet] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    # Filled by the reporter when a run completes.
    last_run: Any = None
    last_report: dict[str, Any] | None = None
    given_registry: Registry | None = None
    # How an action runs an operation: ``loader.operations.invoke``, handed
    # down by the door that builds the graph (the pipeline sits below the
    # operations, which run it for ``refresh``). None: the graph runs no action.
    invoke: Invoker | None = None

    @functools.cached_property
    def registry(self) -> Registry:
        from loader.integrity.hashing import HashCache
        from loader.registry.core import Registry
        from loader.registry.savebatch import SaveBatch

        registry = self.given_registry or Registry(self.config, defer_snapshot_refresh=True)
        # One save per recorded model made a first run quadratic: record in
        # batches, with one stat cache saved alongside (loader/savebatch.py).
        cache = HashCache.load(self.hash_cache_path)
        registry.defer_saves(SaveBatch(before_write=cache.save), hash_cache=cache)
        return registry

    def flush(self) -> None:
        """Write what the run recorded but has not saved yet (before the
        snapshot, the report, and at the end of every run)."""
        if "registry" in self.__dict__:  # never created: nothing recorded
            self.registry.flush_saves()

    def profile(self, key: str, default: Any = None) -> Any:
        return self.config.get(f"profile.{key}", default)

    @functools.cached_property
    def state_dir(self) -> Path:
        return Path(os.path.expanduser(str(self.config.get("pipeline.state_dir"))))

    @property
    def hash_cache_path(self) -> Path:
        return self.files.folder / str(self.config.get("hashing.cache_file"))


def _confirmed_snapshot(config: Config, files: LayerFiles) -> dict[str, dict[str, Any]] | None:
    """The snapshot as plain data when it is known to be what the current layers
    compose to (the check ``Registry.load`` makes), else None."""
    from loader.registry.compose import DynamicFields
    from loader.registry.snapshot import SnapshotStamps

    stamps = SnapshotStamps(files, DynamicFields(config.get("registry.dynamic_fields")), config)
    stats = stamps.current()
    if config.get("entry_overrides") or not stamps.matches(stats):
        return None
    try:
        data = json.loads(files.snapshot.read_bytes())
    except (OSError, ValueError):
        return None
    if stamps.current() != stats or not isinstance(data, list):
        return None  # replaced while we read it
    return {entry["name"]: entry for entry in data if isinstance(entry, dict) and "name" in entry}


def build_graph(
    overrides: Sequence[str] = (),
    *,
    registry: Registry | None = None,
    invoke: Invoker | None = None,
) -> Graph:
    """Compose the config and read the registry (once each) and find every
    model's files. Raises ``RegistryError`` for bad overrides or layers.
    ``invoke``: how the tasks' actions run an operation (``loader.operations.invoke``)."""
    config = registry.cfg if registry is not None else load_config(list(overrides))
    use_config(config)  # the door's warnings as the profile says (JSON lines under ci)
    files = layer_files_for(config)
    entries = None if registry is not None else _confirmed_snapshot(config, files)
    graph = Graph(config, files, entries or {}, given_registry=registry, invoke=invoke)
    if entries is None:  # compose the layers (and validate them) the usual way
        loaded = graph.registry.ensure_loaded()
        graph.entries = {name: entry.model_dump() for name, entry in loaded.items()}
    ollama_models = Path(str(config.get("paths.ollama_models"))).expanduser()
    for name in sorted(graph.entries):
        entry = graph.entries[name]
        try:
            graph.artifacts[name] = resolve_artifact_set(
                name=name,
                model_path=(entry.get("backend_config") or {}).get("model_path"),
                download_path=entry.get("download_path"),
                download_files=list(entry.get("download_files") or []),
                ollama_models_dir=ollama_models,
            )
        except ArtifactError as exc:
            graph.missing[name] = str(exc)
    return graph
