"""The operations behind every front door (CLI, Hydra apps, doit tasks).

Each takes a ``Registry`` and typed arguments and returns JSON-ready data (or
an ``Outcome`` / ``Text``); none prints or exits. ``OPERATIONS`` declares each
with its parameters, once; ``invoke`` runs one and maps what happened to an
exit code, for every door.

    spec          Param, Operation: how an operation is declared
    table         OPERATIONS
    invoke        invoke(), Invocation: errors and outcomes to exit codes
    reading       list, select, list-roles, metrics, explain, snapshot, schema
    verifying     verify, lock, unlock, refresh
    importing     import-ollama, import-dir, rediscover, migrate
    serving       activate-model, current-model, probe-vision, show-backends,
                  record-performance
    editing       audit, set, unset, promote, demote
    config_block  the argument keys of conf/config.yaml, written from OPERATIONS
    config_origin explain --config: which file or override set a config value
"""

from loader.operations.invoke import Invocation, invoke
from loader.operations.reading import explain_field, short_hash
from loader.operations.results import Outcome, Text
from loader.operations.spec import Operation, Param, Shortcut
from loader.operations.table import OPERATIONS

__all__ = [
    "OPERATIONS",
    "Invocation",
    "Operation",
    "Outcome",
    "Param",
    "Shortcut",
    "Text",
    "explain_field",
    "invoke",
    "short_hash",
]
