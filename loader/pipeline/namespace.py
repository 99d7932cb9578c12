"""The doit namespace for one graph: ``DOIT_CONFIG`` and the ``task_*`` generators.

``dodo.py`` puts it in its globals; ``imageworks-loader refresh`` hands it to
doit's API. Which groups a plain ``doit`` runs, and in which order, is decided
here; the tasks themselves come from ``loader.pipeline.tasks`` (the model chains and the
snapshot) and ``operation_tasks`` (importers, probes, activation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from loader.pipeline import operation_tasks
from loader.pipeline.tasks import hash_tasks, snapshot_task, verify_tasks

if TYPE_CHECKING:
    from loader.pipeline.graph import Graph

# Opt-in groups (run when named, or when the profile enables them) and the
# profile key that enables each; they run first: later tasks see what they import.
OPT_IN = {"import": "import_ollama", "rediscover": "rediscover"}
# The chains a plain `doit` runs, in this order (snapshot last).
CHAIN_GROUPS = ("hash", "verify", "probe", "activate", "snapshot")

_GROUP_DOCS = {
    "hash": "Hash each model's files into the stat cache (reruns when a file changed).",
    "verify": "Verify each model against its version lock (after hash:NAME).",
    "probe": "Probe each vision model's endpoint (after verify:NAME).",
    "import": "Import models from their sources (run when named, or enabled by the profile).",
}


def default_groups(graph: Graph, present: Sequence[str]) -> list[str]:
    """What a plain ``doit`` runs: every chain, plus the opt-in groups the profile enables."""
    groups = [g for g in OPT_IN if g in present and graph.profile(OPT_IN[g]) is True]
    return groups + [g for g in CHAIN_GROUPS if g in present]


def refresh_task(groups: Sequence[str]) -> dict[str, Any]:
    return {
        "actions": None,
        "task_dep": list(groups),
        "doc": "Re-import, hash, verify, probe and snapshot; write the report and summary.",
    }


def _task_names(group: str, tasks: Any) -> list[str]:
    if isinstance(tasks, dict):
        return [group]
    return [f"{group}:{task['name']}" for task in tasks]


def dodo_namespace(graph: Graph, *, in_process: bool = False) -> dict[str, Any]:
    """``DOIT_CONFIG`` and the ``task_*`` generators for one graph."""
    from loader.pipeline.checker import checker_for
    from loader.pipeline.doit_reporter import reporter_for
    from loader.pipeline.state import prepare_state

    # Before doit opens its database: one line, not doit's traceback.
    database = prepare_state(graph.state_dir, graph.files.folder)

    built: dict[str, Any] = {
        "import": operation_tasks.import_tasks(graph),
        "rediscover": operation_tasks.rediscover_task(graph),
        "hash": hash_tasks(graph),
        "verify": verify_tasks(graph),
        "probe": operation_tasks.probe_tasks(graph),
        "activate": operation_tasks.activate_task(graph),
    }
    built = {group: tasks for group, tasks in built.items() if tasks}
    groups = default_groups(graph, [*built, "snapshot"])
    # The snapshot follows every task that writes the discovered layer and runs here.
    writers = [n for g in groups if g in built for n in _task_names(g, built[g])]
    built["snapshot"] = snapshot_task(graph, writers)
    built["refresh"] = refresh_task(groups)
    audit = operation_tasks.audit_task(graph)  # never a default: run when named
    if audit:
        built["audit"] = audit
    quiet = graph.profile("log_format") == "json"

    namespace: dict[str, Any] = {
        "DOIT_CONFIG": {
            "default_tasks": groups,
            "dep_file": str(database),
            "backend": "sqlite3",
            "check_file_uptodate": checker_for(graph.hash_cache_path),
            "reporter": reporter_for(graph, in_process=in_process),
            "continue": True,  # a failing chain stops only itself
            "verbosity": 0 if quiet else 2,  # json logs: capture output, re-emit as JSON
            "subtasks": True,  # `doit list` shows every task
        }
    }
    for group, tasks in built.items():
        namespace[f"task_{group}"] = _task_generator(group, tasks)
    return namespace


def _task_generator(group: str, tasks: Any) -> Callable[[], Any]:
    if isinstance(tasks, dict):

        def generate() -> Any:
            return tasks

    else:

        def generate() -> Any:
            yield from tasks

    generate.__name__ = f"task_{group}"
    generate.__doc__ = _GROUP_DOCS.get(group)
    return generate
