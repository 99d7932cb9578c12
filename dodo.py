"""doit tasks for imageworks-loader: the registry plus conf/ as desired state.

    doit                      hash, verify, (probe, activate,) snapshot: what changed
    doit list                 every task with its one-line doc
    doit info 'hash:NAME'     why a task would run
    doit refresh              everything, then the JSON report and Markdown summary
    doit registry.dir=/srv/configs profile=ci     Hydra overrides, as on the CLI
    doit snapshot overrides="registry.dir=/srv/configs profile=ci"

The graph is built in loader/pipeline/ from the same operations the CLI calls.
"""

import sys

from loader.errors import as_registry_error
from loader.logs import open_front_door
from loader.operations.invoke import invoke
from loader.pipeline.graph import build_graph, overrides_from_doit_vars
from loader.pipeline.namespace import dodo_namespace

open_front_door("doit")  # warnings as one line each (JSON lines under profile=ci)
try:
    graph = build_graph(overrides_from_doit_vars(), invoke=invoke)
    globals().update(dodo_namespace(graph))
except Exception as exc:  # one line, as on the CLI, not doit's traceback
    error = as_registry_error(exc)
    print(f"doit: error: {error}", file=sys.stderr)
    raise SystemExit(error.exit_code) from None
