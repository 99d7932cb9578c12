"""The doit task graph: the registry plus ``conf/`` are the desired state.

``build_graph`` (``loader.pipeline.graph``) composes the config and reads the
registry once and works out which files each model is made of; the builders
here turn that into the model chains and the snapshot, whose actions call the
same operations as the CLI (``loader.pipeline.actions``).
``loader.pipeline.namespace`` assembles them, with the tasks of
``loader.pipeline.operation_tasks``, into what ``dodo.py`` exposes and what
``imageworks-loader refresh`` runs in-process.

    import:ollama  record what a running Ollama serves (opt-in)
    rediscover     record every model folder under paths.models (opt-in)
    hash:NAME      read a model's files into the stat cache (file deps: its files)
    verify:NAME    record the hashes and enforce the version lock
    snapshot       regenerate model_registry.json (deps: both layers, the config)
    refresh        everything above, then the JSON report and Markdown summary
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loader.errors import EXIT_INTEGRITY, RegistryError
from loader.fileio import Fingerprint
from loader.integrity.hashing import ArtifactSet
from loader.pipeline.actions import OperationOutcome, call_operation, guarded
from loader.pipeline.graph import Graph
from loader.pipeline.run_record import OperationFailed


def files_stamp(paths: Sequence[str]) -> str:
    """What a ``touch`` changes, so ``verify`` reruns after one."""
    digest = hashlib.sha256()
    for path in paths:
        size, mtime_ns, ctime_ns, ino = Fingerprint.of(os.stat(path))
        digest.update(f"{path}\0{size}\0{mtime_ns}\0{ctime_ns}\0{ino}\n".encode())
    return digest.hexdigest()[:32]


# --- the tasks ------------------------------------------------------------------


def file_deps(artifact_set: ArtifactSet) -> list[str]:
    root = str(artifact_set.root)
    deps = [os.path.join(root, rel) for rel in artifact_set.files]  # no pathlib: 10^4 files
    if artifact_set.manifest is not None:
        deps.append(str(artifact_set.manifest))
    return deps


def hash_record(graph: Graph, name: str) -> str:
    """Where ``hash:NAME`` leaves its result: the file ``verify:NAME`` depends on."""
    key = hashlib.sha256(name.encode()).hexdigest()[:24]
    return os.path.join(graph.state_dir, "hashed", f"{key}.json")


def _write_record(path: str, record: dict[str, Any]) -> None:
    from loader.fileio import atomic_write_bytes

    data = json.dumps(record, sort_keys=True).encode()
    try:
        if Path(path).read_bytes() == data:
            return  # unchanged: verify has nothing new to check
    except OSError:
        pass
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Not fsynced: a record lost in a crash only makes its verify run again,
    # and one fsync per model cost seconds on a first run over many models.
    atomic_write_bytes(Path(path), data, durable=False)


def hash_tasks(graph: Graph) -> list[dict[str, Any]]:
    tasks = []
    for name, artifact_set in graph.artifacts.items():
        deps = file_deps(artifact_set)
        record = hash_record(graph, name)

        def run(name: str = name, deps: list[str] = deps, record: str = record) -> dict[str, Any]:
            from loader.integrity.version_locks import hash_model

            result = hash_model(graph.registry.get(name), registry=graph.registry)
            result["stamp"] = files_stamp(deps)
            _write_record(record, {k: result[k] for k in ("name", "aggregate_sha256", "stamp")})
            return result

        tasks.append(
            {
                "name": name,
                "actions": [guarded(run)],
                "file_dep": deps,
                "targets": [record],
                "doc": f"Hash {name}'s {len(deps)} files into the stat cache.",
            }
        )
    return tasks


def _lock(entry: dict[str, Any]) -> dict[str, Any]:
    return entry.get("version_lock") or {}


def _recorded_aggregate(graph: Graph, name: str) -> str | None:
    return (graph.entries[name].get("artifacts") or {}).get("aggregate_sha256")


def _lock_inputs(graph: Graph, name: str) -> str:
    """What verify's outcome depends on besides the files, as one key."""
    entry = graph.entries[name]
    inputs = [
        bool(_lock(entry).get("locked")),
        _lock(entry).get("expected_aggregate_sha256"),
        (entry.get("backend_config") or {}).get("model_path"),
        entry.get("download_path"),
        list(entry.get("download_files") or []),
    ]
    return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:24]


def _uptodate_signature(task: Any, values: dict[str, Any]) -> bool:  # pragma: no cover
    raise NotImplementedError  # only its signature is used


# doit calls inspect.signature() on every uptodate callable of every task
# (~65 ms over 1,000 verify tasks); a precomputed one is returned at once.
_UPTODATE_SIGNATURE = inspect.signature(_uptodate_signature)


def _inputs_unchanged(key: str, recorded: str | None) -> Callable[..., bool]:
    # A plain function: doit inspects every uptodate callable's signature, and
    # its config_changed/result_dep objects cost ~0.3 ms each per task.
    # ``recorded``: the aggregate the registry holds. A run killed after doit
    # noted a verify but before its batch was saved finds it missing: rerun.
    def uptodate(task: Any, values: dict[str, Any]) -> bool:
        return values.get("inputs") == key and values.get("aggregate_sha256") == recorded

    # What doit's inspect.signature reads; functions take attributes, typeshed says not.
    uptodate.__signature__ = _UPTODATE_SIGNATURE  # type: ignore[attr-defined]
    return uptodate


def verify_tasks(graph: Graph) -> list[dict[str, Any]]:
    strict = graph.profile("strict_integrity") is True
    tasks = []
    for name in graph.artifacts:
        key = _lock_inputs(graph, name)

        def run(name: str = name, key: str = key) -> dict[str, Any]:
            result = call_operation("verify", graph, {"name": name})
            if strict and result.get("status") == "legacy-lock":
                raise OperationOutcome(
                    f"model {name!r}: its lock covers only the config and tokenizer files, "
                    "not the weights (a legacy lock); strict integrity needs it re-pinned: "
                    f"imageworks-loader lock {name!r} --set-expected",
                    EXIT_INTEGRITY,
                )
            return {**result, "inputs": key}

        tasks.append(
            {
                "name": name,
                "actions": [guarded(run)],
                "file_dep": [hash_record(graph, name)],  # implies task_dep hash:NAME
                "uptodate": [_inputs_unchanged(key, _recorded_aggregate(graph, name))],
                "doc": f"Verify {name} against its version lock and record its hashes.",
            }
        )
    for name, reason in graph.missing.items():
        if strict and _lock(graph.entries[name]).get("locked"):
            tasks.append(_unprovable_lock_task(name, reason))
    return tasks


def _unprovable_lock_task(name: str, reason: str) -> dict[str, Any]:
    message = f"model {name!r} is locked but cannot be verified on this host: {reason}"

    def fail() -> OperationFailed:
        return OperationFailed(message, exit_code=EXIT_INTEGRITY)

    return {
        "name": name,
        "actions": [fail],
        "uptodate": [False],
        "doc": f"Fail: {name} is locked but its files are missing (strict integrity).",
    }


_CONFIG_REF = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*\}")
_ENV_REF = re.compile(r"\$\{oc\.env:([A-Za-z_]\w*)")


def snapshot_inputs(graph: Graph) -> dict[str, Any]:
    """The config values and environment variables the snapshot's content
    depends on: the registry settings and what the layers interpolate."""
    files = graph.files
    text = ""
    for path in (files.curated, files.discovered):
        with contextlib.suppress(OSError):  # a missing layer interpolates nothing
            text += path.read_text(encoding="utf-8")
    keys = sorted(set(_CONFIG_REF.findall(text)))
    env = sorted(set(_ENV_REF.findall(text)))
    registry = dict(graph.config.get("registry") or {})
    registry.pop("refresh_snapshot_on_load", None)
    registry.pop("host", None)  # whose records these are; not what the snapshot holds
    return {
        "registry": registry,
        "config": {key: _jsonable(graph.config.get(key)) for key in keys},
        "env": {name: os.environ.get(name) for name in env},
    }


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        return repr(value)
    return value


def _flushed(graph: Graph) -> Callable[..., bool]:
    def uptodate(task: Any, values: dict[str, Any]) -> bool:
        try:
            graph.flush()
        except RegistryError:
            return False  # the snapshot's action flushes again and reports it
        return True  # the other checks decide

    return uptodate


def snapshot_task(graph: Graph, writers: Sequence[str]) -> dict[str, Any]:
    """After every task that writes the discovered layer (``writers``): doit has
    no ordering without a dependency, and a snapshot taken before them would
    make the next run redo it. When one of them fails, the snapshot waits."""
    from doit.tools import config_changed

    files = graph.files

    def snapshot() -> Any:
        graph.flush()  # what this run recorded belongs in the snapshot
        return call_operation("snapshot", graph, {})

    return {
        "actions": [guarded(snapshot)],
        "file_dep": [str(p) for p in (files.curated, files.discovered) if p.exists()],
        "targets": [str(files.snapshot)],
        "task_dep": list(writers),
        # First write what the writers recorded in batches, so doit's check of
        # the discovered layer (a file_dep, checked after this) sees it.
        "uptodate": [_flushed(graph), config_changed(snapshot_inputs(graph))],
        "doc": "Regenerate the merged snapshot when a layer or the config it uses changed.",
    }
