"""Tasks that call other issues' operations: importers, vision probes, activation.

Each builder returns nothing when its operation is not installed, so the graph
only offers what this checkout can run. The actions call ``OPERATIONS``, the
same functions as the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..tasks import operation_action

if TYPE_CHECKING:
    from ..tasks import Graph


# The module each operation lives in: finding it is enough to know the
# operation is there, without importing OPERATIONS (and pydantic) for a no-op run.
_HOMES = {
    "import-ollama": "loader.importers",
    "rediscover": "loader.importers",
    "probe-vision": "loader.probe",
    "activate-model": "loader.orchestrator",
}


def _installed(operation: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(_HOMES[operation]) is not None


def _always_run(task: Any, values: dict[str, Any]) -> bool:
    return False  # it reads a live service: nothing on disk says it is done


def import_tasks(graph: Graph) -> list[dict[str, Any]]:
    """``import:ollama``: record the models a running Ollama serves."""
    if not _installed("import-ollama"):
        return []
    return [
        {
            "name": "ollama",
            "actions": [operation_action("import-ollama", graph, {})],
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


def probe_tasks(graph: Graph) -> list[dict[str, Any]]:
    return []


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
