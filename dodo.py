"""doit tasks for imageworks-loader: the registry plus conf/ as desired state.

    doit                      hash, verify, (probe, activate,) snapshot: what changed
    doit list                 every task with its one-line doc
    doit info 'hash:NAME'     why a task would run
    doit refresh              everything, then the JSON report and Markdown summary
    doit registry.dir=/srv/configs profile=ci     Hydra overrides, as on the CLI
    doit snapshot overrides="registry.dir=/srv/configs profile=ci"

The graph is built in loader/pipeline/tasks.py from the same operations the CLI calls.
"""

import sys

from doit.doit_cmd import _CMDLINE_VARS

from loader.errors import RegistryError
from loader.pipeline.namespace import dodo_namespace
from loader.pipeline.tasks import build_graph, overrides_from_doit_vars

try:
    globals().update(dodo_namespace(build_graph(overrides_from_doit_vars(_CMDLINE_VARS or {}))))
except RegistryError as exc:  # one line, as on the CLI, not doit's traceback
    print(f"doit: error: {exc}", file=sys.stderr)
    raise SystemExit(exc.exit_code) from None
