"""Tasks that call other issues' operations: importers, vision probes, activation.

Each builder returns nothing when its operation is not installed, so the graph
only offers what this checkout can run. The actions call ``OPERATIONS``, the
same functions as the CLI.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loader.pipeline.actions import call_operation, operation_action
from loader.pipeline.tasks import hash_record

if TYPE_CHECKING:
    from loader.pipeline.graph import Graph


# The module each operation lives in: finding it is enough to know the
# operation is there, without importing OPERATIONS (and pydantic) for a no-op run.
_HOMES = {
    "import-ollama": "loader.importers",
    "rediscover": "loader.importers",
    "probe-vision": "loader.probe",
    "activate-model": "loader.orchestrator",
    "audit": "loader.upkeep.audit",
}


def _installed(operation: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(_HOMES[operation]) is not None


def _always_run(task: Any, values: dict[str, Any]) -> bool:
    return False  # it reads a live service: nothing on disk says it is done


# A task whose failure is its own: doit sees it succeed (so the snapshot, which
# follows every writer, still runs) and the reporter records it as failed.
FAILED_ALONE = "failed_alone"


def failing_alone(operation: str, graph: Graph) -> Any:
    """The operation as a task action whose errors fail only this task: an
    Ollama that is down (a runner without one) must not hold back the snapshot."""
    from loader.errors import RegistryError

    def action() -> dict[str, Any]:
        try:
            result = call_operation(operation, graph, {})
        except RegistryError as exc:
            return {FAILED_ALONE: {"error": str(exc), "exit_code": exc.exit_code}}
        return result if isinstance(result, dict) else {"result": result}

    action.__name__ = operation.replace("-", "_")
    return action


def import_tasks(graph: Graph) -> list[dict[str, Any]]:
    """``import:ollama``: record the models a running Ollama serves. When
    Ollama cannot be read, this task fails and nothing else does
    (``profile.import_ollama=false`` leaves it out of the run)."""
    if not _installed("import-ollama"):
        return []
    return [
        {
            "name": "ollama",
            "actions": [failing_alone("import-ollama", graph)],
            "uptodate": [_always_run],
            "doc": "Record the models a running Ollama serves (importers.ollama.url).",
        }
    ]


def rediscover_task(graph: Graph) -> dict[str, Any] | None:
    """``rediscover``: record every model folder under paths.models."""
    if not _installed("rediscover"):
        return None
    return {
        "actions": [operation_action("rediscover", graph, {})],
        "uptodate": [_always_run],
        "doc": "Record every model folder under paths.models; mark entries whose folder went.",
    }


def serves_itself(entry: dict[str, Any], orchestrator_port: Any) -> bool:
    """A vLLM entry that is a server of its own, not the orchestrator's: its
    ``base_url``, or a port other than ``orchestrator.port`` (ImageWorks runs
    Florence on 24002 beside the orchestrated 24001). Port 0 is no port."""
    config = entry.get("backend_config") or {}
    if config.get("base_url"):
        return True
    port = config.get("port")
    if port is None:
        return False
    try:
        return int(port) not in (0, int(orchestrator_port))
    except (TypeError, ValueError):
        return False


def probe_candidates(graph: Graph) -> list[str]:
    """Vision entries whose files are on this host and that are being served:
    any non-vLLM one (Ollama serves every pulled model on demand), a vLLM one
    on its own port (``serves_itself``), and the vLLM one named by
    ``orchestrator.desired`` (one vLLM model is served at a time on the
    orchestrator's port)."""
    desired = graph.config.get("orchestrator.desired")
    port = graph.config.get("orchestrator.port")
    names = [
        name
        for name in graph.artifacts
        if graph.entries[name].get("backend") != "vllm"
        or name == desired
        or serves_itself(graph.entries[name], port)
    ]
    if not names:
        return []
    from loader.registry.schema import capability_of  # only now: it brings pydantic

    return [n for n in names if capability_of(graph.entries[n].get("capabilities"), "vision")]


def _recorded_aggregate(graph: Graph, name: str) -> str | None:
    """The aggregate ``hash:NAME`` found (this run or before), else the recorded one."""
    try:
        with open(hash_record(graph, name), encoding="utf-8") as fh:
            return json.load(fh).get("aggregate_sha256")
    except (OSError, ValueError):
        return (graph.entries[name].get("artifacts") or {}).get("aggregate_sha256")


def _probe_still_applies(graph: Graph, name: str, config_digest: str) -> Any:
    # The recorded probe says when it is stale: its aggregate, config digest and
    # age (see docs/probe.md, "The record"); a failed probe never applies.
    record = (graph.entries[name].get("probes") or {}).get("vision") or {}
    max_age = graph.config.get("probe.max_age")

    def uptodate(task: Any, values: dict[str, Any]) -> bool:
        if not record.get("vision_ok"):
            return False
        if record.get("aggregate_sha256") != _recorded_aggregate(graph, name):
            return False
        if record.get("config_sha256") != config_digest:
            return False
        if max_age is None:
            return True
        try:
            probed = datetime.fromisoformat(str(record.get("timestamp")))
        except ValueError:
            return False
        return (datetime.now(UTC) - probed).total_seconds() < float(max_age)

    return uptodate


def probe_tasks(graph: Graph) -> list[dict[str, Any]]:
    """``probe:NAME``: probe-vision, after the model's verify (and activation)."""
    if not _installed("probe-vision"):
        return []
    names = probe_candidates(graph)
    if not names:
        return []
    from loader.probe.vision import config_sha256

    digest = config_sha256(graph.config)
    desired = graph.config.get("orchestrator.desired")
    tasks = []
    for name in names:
        deps = [f"verify:{name}"]
        if name == desired and _installed("activate-model"):
            deps.append("activate")
        tasks.append(
            {
                "name": name,
                "actions": [operation_action("probe-vision", graph, {"name": name})],
                "task_dep": deps,
                "uptodate": [_probe_still_applies(graph, name, digest)],
                "doc": f"Probe {name}'s endpoint with images (new weights, probe settings "
                "or probe.max_age redo it).",
            }
        )
    return tasks


def activate_task(graph: Graph) -> dict[str, Any] | None:
    """``activate``: serve ``orchestrator.desired`` on the vLLM port. Only when a
    desired model is set. It always asks the orchestrator, because only a health
    check can tell whether the server still answers; ``activate-model`` restarts
    nothing when the model is already healthy on the port."""
    desired = graph.config.get("orchestrator.desired")
    if not desired or not _installed("activate-model"):
        return None
    return {
        "actions": [operation_action("activate-model", graph, {"name": str(desired)})],
        "uptodate": [_always_run],
        # its weights verified first, when they are on this host
        "task_dep": [f"verify:{desired}"] if desired in graph.artifacts else [],
        "doc": f"Serve {desired} on the vLLM port (orchestrator.desired); "
        "restarts nothing when it is healthy.",
    }


def audit_task(graph: Graph) -> dict[str, Any] | None:
    """``audit``: the registry's findings (run when named: ``doit audit``)."""
    if not _installed("audit"):
        return None
    return {
        "actions": [operation_action("audit", graph, {})],
        "uptodate": [_always_run],
        "doc": "Check the registry for common mistakes (run when named); fails on errors.",
    }
