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

# Every operation's function (the names the single module had).
from loader.operations.editing import audit_op, demote_op, promote_op, set_op, unset_op
from loader.operations.importing import import_dir_op, import_ollama_op, migrate_op, rediscover_op
from loader.operations.invoke import Invocation, invoke
from loader.operations.reading import (
    explain_field,
    explain_op,
    list_op,
    list_roles_op,
    metrics_op,
    schema_op,
    select_op,
    short_hash,
    snapshot_op,
)
from loader.operations.results import Outcome, Text
from loader.operations.serving import (
    activate_model_op,
    current_model_op,
    probe_vision_op,
    record_performance_op,
    show_backends_op,
)
from loader.operations.spec import Operation, Param, Shortcut
from loader.operations.table import OPERATIONS
from loader.operations.verifying import lock_op, refresh_op, unlock_op, verify_op

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
    "activate_model_op",
    "audit_op",
    "current_model_op",
    "demote_op",
    "explain_op",
    "import_dir_op",
    "import_ollama_op",
    "list_op",
    "list_roles_op",
    "lock_op",
    "metrics_op",
    "migrate_op",
    "probe_vision_op",
    "promote_op",
    "record_performance_op",
    "rediscover_op",
    "refresh_op",
    "schema_op",
    "select_op",
    "set_op",
    "show_backends_op",
    "snapshot_op",
    "unlock_op",
    "unset_op",
    "verify_op",
]
