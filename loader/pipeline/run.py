"""Run the task graph in this process: ``imageworks-loader refresh``.

The same namespace ``dodo.py`` exposes, loaded through doit's API, so the CLI
and ``doit refresh`` run one graph and write one kind of report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from loader.errors import RegistryError

if TYPE_CHECKING:
    from loader.pipeline.graph import Graph
    from loader.pipeline.run_record import RunRecord


class PipelineError(RegistryError):
    """doit stopped before it ran the graph (e.g. a task name it does not know)."""


def run_graph(graph: Graph, tasks: Sequence[str], *, jobs: int = 1) -> RunRecord:
    """Run ``tasks`` (and what they depend on) with doit; returns what happened."""
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    from loader.pipeline.namespace import dodo_namespace

    graph.last_run = None
    argv = ["run", *(["-n", str(jobs)] if jobs > 1 else []), *tasks]
    main = DoitMain(ModuleTaskLoader(dodo_namespace(graph, in_process=True)), config_filenames=())
    code = main.run(argv)
    if graph.last_run is None:
        raise PipelineError(f"doit {' '.join(argv)}: stopped before running (exit {code})")
    return graph.last_run
