"""``OPERATIONS``: every operation with its parameters, declared once.

The CLI's subcommands (``loader.frontdoors.parser``), the argument keys of
``conf/config.yaml`` (``loader.operations.config_block``), the Hydra apps and
the doit tasks all read their arguments from here. The CLI's own words for a
command (its description and examples) live in ``loader.frontdoors.commands``.
"""

from __future__ import annotations

from loader.operations import editing, importing, reading, serving, verifying
from loader.operations.spec import Operation, Param, Shortcut

NAME_HELP = "the model's logical name (or sweep several: -m \"name='a','b'\")"

NAME = Param("name", help=NAME_HELP, positional=True, model_names=True)
REQUIRED_NAME = Param("name", help=NAME_HELP, positional=True, required=True, model_names=True)
DRY_RUN_IMPORT = Param("dry_run", bool, "print what would change, write nothing")
DRY_RUN_EDIT = Param("dry_run", bool, "print the diff of the layer files; write nothing")
LAYER = Param(
    "layer", choices=("curated", "discovered"), help="the layer to edit (default: curated)"
)


def _fields(help: str) -> Param:
    return Param("fields", list, help, positional=True, metavar="FIELD")


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            "list", reading.list_op, (Param("role", help="only models that have this role"),)
        ),
        Operation(
            "select",
            reading.select_op,
            (
                NAME,
                Param("role", help="pick the model for this role instead of naming one"),
                Param(
                    "require",
                    list,
                    "fail unless it has this capability (text, vision, audio, embedding, "
                    "tools, thinking, reasoning, or a synonym such as tool_calls); repeatable",
                    metavar="CAPABILITY",
                    shortcuts=(
                        Shortcut("--require-vision", "vision", "fail unless it has vision"),
                    ),
                ),
            ),
        ),
        Operation("list-roles", reading.list_roles_op),
        Operation(
            "metrics",
            reading.metrics_op,
            (
                Param(
                    "name",
                    help="one model (default: all)",
                    positional=True,
                    model_names=True,
                    option_alias="--name",
                    alias_help="one model (the ImageWorks form)",
                ),
            ),
        ),
        Operation(
            "explain",
            reading.explain_op,
            (
                NAME,
                Param("field", help="one field, dotted (backend_config.port)"),
                Param(
                    "config_key",
                    flag="--config",
                    metavar="KEY",
                    help="a config key (backends.vllm.port)",
                ),
            ),
        ),
        Operation(
            "verify",
            verifying.verify_op,
            (
                NAME,
                Param("all", bool, "verify every model (give no NAME)"),
                Param("rehash", bool, "ignore the hash cache"),
            ),
        ),
        Operation(
            "lock",
            verifying.lock_op,
            (
                REQUIRED_NAME,
                Param(
                    "set_expected",
                    bool,
                    "hash the model's files as they are now (unchanged files come from the "
                    "hash cache) and pin that aggregate as expected; refused if files are missing",
                ),
            ),
        ),
        Operation("unlock", verifying.unlock_op, (REQUIRED_NAME,)),
        Operation(
            "refresh",
            verifying.refresh_op,
            (Param("jobs", int, "tasks run in parallel", default=1, short="-j"),),
            runs_operations=True,
        ),
        Operation(
            "activate-model",
            serving.activate_model_op,
            (
                NAME.with_help("the model's logical name, or none to stop"),
                Param("stop", bool, "stop the active server"),
            ),
        ),
        Operation("current-model", serving.current_model_op),
        Operation(
            "probe-vision",
            serving.probe_vision_op,
            (
                REQUIRED_NAME,
                Param(
                    "image",
                    help="an image file (default: the built-in colour probe)",
                    positional=True,
                ),
                Param(
                    "expect",
                    help="pass only if the answer names WORD (ignoring case)",
                    metavar="WORD",
                ),
            ),
        ),
        Operation("snapshot", reading.snapshot_op),
        Operation(
            "migrate",
            importing.migrate_op,
            (Param("dry_run", bool, "print the split; write nothing"),),
        ),
        Operation(
            "import-ollama",
            importing.import_ollama_op,
            (
                Param("url", help="the Ollama server, e.g. http://127.0.0.1:11434 or host:port"),
                DRY_RUN_IMPORT,
            ),
        ),
        Operation(
            "import-dir",
            importing.import_dir_op,
            (
                Param(
                    "dirs",
                    list,
                    "a model folder, or a folder of them",
                    positional=True,
                    metavar="PATH",
                ),
                Param("backend", help="the backend new entries get (default: vllm)"),
                Param("name", help="the logical name for the one model folder given"),
                Param(
                    "hash",
                    bool,
                    "also record the artifacts' sha256 (the same hash cache as verify)",
                ),
                DRY_RUN_IMPORT,
            ),
        ),
        Operation("rediscover", importing.rediscover_op, (DRY_RUN_IMPORT,)),
        Operation(
            "audit",
            editing.audit_op,
            (
                Param(
                    "names",
                    list,
                    "only these models",
                    positional=True,
                    metavar="NAME",
                    model_names=True,
                ),
                Param("fix", bool, "apply the lossless fixes"),
                DRY_RUN_EDIT,
            ),
        ),
        Operation(
            "set",
            editing.set_op,
            (
                REQUIRED_NAME.with_help("the model's logical name"),
                Param(
                    "assignments",
                    list,
                    "e.g. backend_config.port=9000",
                    positional=True,
                    metavar="FIELD=VALUE",
                ),
                LAYER,
                DRY_RUN_EDIT,
            ),
        ),
        Operation(
            "unset",
            editing.unset_op,
            (REQUIRED_NAME, _fields("e.g. backend_config.port"), LAYER, DRY_RUN_EDIT),
        ),
        Operation(
            "promote",
            editing.promote_op,
            (REQUIRED_NAME, _fields("static fields to pin"), DRY_RUN_EDIT),
        ),
        Operation(
            "demote",
            editing.demote_op,
            (REQUIRED_NAME, _fields("static fields to unpin"), DRY_RUN_EDIT),
        ),
        Operation("schema", reading.schema_op),
        Operation(
            "show-backends",
            serving.show_backends_op,
            (Param("json", bool, "print JSON rows instead of a table"),),
        ),
        Operation(
            "record-performance",
            serving.record_performance_op,
            (
                REQUIRED_NAME,
                Param("ttft_ms", float, "time to the first token, in ms"),
                Param("tokens", int, "tokens generated"),
                Param("duration_ms", float, "the whole request, in ms"),
            ),
        ),
    )
}
