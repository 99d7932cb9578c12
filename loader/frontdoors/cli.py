"""The ``imageworks-loader`` command line: argument translation and exit codes.

No logic lives here: each command calls one function in ``loader.operations``
and prints its JSON result on stdout. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NoReturn

from loader.errors import EXIT_OK, RegistryError

PROG = "imageworks-loader"

OVERRIDES_HELP = """\
Overrides (after the command's own arguments, any number):
  KEY=VALUE                  a Hydra override of the composed config, e.g.
                             registry.dir=/srv/configs  backends.vllm.port=8001
                             profile=ci  (see: --cfg job)
  --set NAME.FIELD=VALUE     override one entry's field for this run only
                             (never saved). NAME is matched against the
                             registry's names, longest first, so names with
                             dots and parentheses work; FIELD may be nested
                             (backend_config.port). VALUE is JSON if it
                             parses (9000, true, ["a"]), else text.
                             Quote the whole word for the shell:
                             --set 'qwen2.5-vl-7b-instruct_(AWQ).backend_config.port=9000'

Hydra flags (hand the run to the command's Hydra app):
  --cfg job|hydra|all        print the composed config instead of running
  --resolve                  with --cfg, resolve interpolations
  -m, --multirun             sweep, e.g. -m "name='qwen3_8b_(Q4_K_M)','llama3.1_8b_(Q5_K_M)'"
                             (quote names that hold parentheses, Hydra-style)

Environment: IMAGEWORKS_REGISTRY_DIR sets registry.dir (default: configs).
Exit codes: 0 success; 1 usage error, unknown model, missing capability;
2 integrity failure (version lock violated, blob digest mismatch)."""

# A command's own --help lists --set and the Hydra flags as options; its
# epilog adds only what argparse cannot show (KEY=VALUE words, exit codes).
COMMAND_EPILOG_TAIL = """\
KEY=VALUE words after the arguments are Hydra overrides of the composed config
(registry.dir=/srv/configs profile=ci; see --cfg job). IMAGEWORKS_REGISTRY_DIR
sets registry.dir (default: configs). Exit codes: 0 success; 1 usage error,
unknown model, missing capability; 2 integrity failure."""

SET_HELP = (
    "override one entry's field for this run only, never saved (repeatable). NAME "
    "is matched against the registry's names, longest first; FIELD may be nested "
    "(backend_config.port); VALUE is JSON if it parses, else text. Quote the word: "
    "--set 'qwen3_8b_(Q4_K_M).backend_config.port=9000'"
)

NAME_HELP = "the model's logical name (or sweep several: -m \"name='a','b'\")"

EXAMPLES: dict[str, list[str]] = {
    "list": [f"{PROG} list --role caption", f"{PROG} list registry.dir=/srv/configs"],
    "select": [
        f"{PROG} select 'qwen2.5-vl-7b-instruct_(AWQ)' --require-vision",
        f"{PROG} select --role caption",
    ],
    "list-roles": [f"{PROG} list-roles"],
    "metrics": [f"{PROG} metrics", f"{PROG} metrics --name 'qwen3_8b_(Q4_K_M)'"],
    "explain": [
        f"{PROG} explain 'qwen3_8b_(Q4_K_M)' --field backend_config.port",
        f"{PROG} explain --config backends.vllm.port",
    ],
    "verify": [f"{PROG} verify 'florence-2-large_(FP16)'", f"{PROG} verify --all profile=ci"],
    "lock": [f"{PROG} lock 'florence-2-large_(FP16)' --set-expected"],
    "unlock": [f"{PROG} unlock 'florence-2-large_(FP16)'"],
    "snapshot": [f"{PROG} snapshot registry.dir=/srv/configs"],
    "migrate": [f"{PROG} migrate --dry-run", f"{PROG} migrate registry.dir=/srv/old-registry"],
    "probe-vision": [
        f"{PROG} probe-vision 'qwen2.5-vl-7b-instruct_(AWQ)'",
        f"{PROG} probe-vision 'qwen2.5-vl-7b-instruct_(AWQ)' cat.jpg --expect cat",
    ],
    "activate-model": [
        f"{PROG} activate-model 'qwen2.5-vl-7b-instruct_(AWQ)'",
        f"{PROG} activate-model --stop",
    ],
    "current-model": [f"{PROG} current-model"],
    "import-ollama": [
        f"{PROG} import-ollama --dry-run",
        f"{PROG} import-ollama --url http://gpu-box:11434",
    ],
    "import-dir": [
        f"{PROG} import-dir ~/ai-models/weights/Qwen/Qwen2.5-VL-7B-Instruct-AWQ --hash",
        f"{PROG} import-dir ~/ai-models/weights --dry-run",
    ],
    "rediscover": [f"{PROG} rediscover --dry-run", f"{PROG} rediscover paths.models=/srv/weights"],
    "audit": [f"{PROG} audit", f"{PROG} audit --fix --dry-run"],
    "set": [
        f"{PROG} set 'qwen3_8b_(Q4_K_M)' display_name='Qwen3 8B' backend_config.port=11435",
        f"{PROG} set my-model backend=vllm backend_config.model_path=/srv/models/my-model",
    ],
    "unset": [f"{PROG} unset 'qwen3_8b_(Q4_K_M)' display_name"],
    "promote": [
        f"{PROG} promote 'qwen3_8b_(Q4_K_M)'",
        f"{PROG} promote 'qwen3_8b_(Q4_K_M)' served_model_id",
    ],
    "demote": [f"{PROG} demote 'qwen3_8b_(Q4_K_M)' display_name"],
    "schema": [f"{PROG} schema > model_registry.layer.schema.json"],
    "show-backends": [f"{PROG} show-backends", f"{PROG} show-backends --json"],
    "record-performance": [
        f"{PROG} record-performance 'qwen3_8b_(Q4_K_M)' --ttft-ms 180 --tokens 256 "
        "--duration-ms 4200"
    ],
    "refresh": [f"{PROG} refresh", f"{PROG} refresh profile=ci registry.dir=/srv/configs"],
}

# Options whose next word is their value, so it is never taken as an override.
_VALUE_OPTIONS = {
    "--set",
    "--role",
    "--require",
    "--name",
    "--expect",
    "--cfg",
    "-c",
    "--package",
    "-p",
}
_VALUE_OPTIONS |= {"--url", "--backend"}  # the importers'
_VALUE_OPTIONS |= {"--layer", "--ttft-ms", "--tokens", "--duration-ms"}
_VALUE_OPTIONS |= {"--field", "--config", "--format"}
_HYDRA_FLAGS = {"--cfg", "-c", "--resolve", "--package", "-p", "-m", "--multirun", "--info", "-i"}
COMPLETE_NAMES = "__complete-names"  # what the completion scripts run to list model names


class UsageError(RegistryError):
    """The command line itself is wrong (exit 1, like every usage error)."""


class _Parser(argparse.ArgumentParser):
    # argparse would print its usage block and exit 2, the integrity code.
    def error(self, message: str) -> NoReturn:
        choice = re.match(r"argument COMMAND: invalid choice: '(.*?)'", message)
        if choice:  # (a parser built for one command lists the others from a full one)
            message = _unknown_command(choice.group(1), _subcommands(build_parser()))
        raise UsageError(f"{message} (see {self.prog} --help)")


def _unknown_command(word: str, commands: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, commands, n=2, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown command {word!r}{hint} (commands: {', '.join(commands)})"


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


class _VersionAction(argparse.Action):
    # Reads the package metadata only when asked: it costs a few ms at import.
    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> NoReturn:
        from importlib.metadata import version

        print(f"{PROG} {version('imageworks-loader')}")
        parser.exit()


class _CompletionAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None) -> NoReturn:
        from loader.frontdoors.completion import completion_script

        sys.stdout.write(completion_script(parser, str(values)))
        parser.exit()


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="entry_overrides",
        action="append",
        default=[],
        metavar="NAME.FIELD=VALUE",
        help=SET_HELP,
    )
    hydra = parser.add_argument_group("Hydra flags (hand the run to the command's Hydra app)")
    hydra.add_argument(
        "--cfg", "-c", choices=["job", "hydra", "all"], help="print the composed config instead"
    )
    hydra.add_argument("--resolve", action="store_true", help="resolve interpolations in --cfg")
    hydra.add_argument("--package", "-p", help="with --cfg, print only this package")
    hydra.add_argument(
        "--multirun",
        "-m",
        action="store_true",
        help="run a Hydra sweep: -m \"name='qwen3_8b_(Q4_K_M)','llama3.1_8b_(Q5_K_M)'\"",
    )
    hydra.add_argument("--info", "-i", nargs="?", const="all", help="Hydra's --info")


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=["json", "table"],
        default="json",
        help="json (the default, for scripts) or table (for a person: name, backend, size, "
        "locked, last verify and probe with their age, served now)",
    )


def _model_name(action: argparse.Action) -> argparse.Action:
    # Completed from the registry by the scripts of `completion`.
    action.complete = {"bash": "_imageworks_loader_models", "zsh": "_imageworks_loader_models"}
    return action


class _Skipped:
    """Stands in for the parser of a command that this run does not need:
    it accepts ``add_argument`` and friends and records nothing."""

    def add_argument(self, *args: Any, **kwargs: Any) -> _Skipped:
        return self

    def add_argument_group(self, *args: Any, **kwargs: Any) -> _Skipped:
        return self

    add_mutually_exclusive_group = add_argument_group


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; ``only``: build just that command's parser
    (a run needs one; building all 17 costs more than a ``list`` itself)."""
    parser = _Parser(
        prog=PROG,
        description="A deterministic, layered model registry for local LLM/VLM serving.",
        epilog=OVERRIDES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument(
        "--print-completion",
        action=_CompletionAction,
        choices=["bash", "zsh"],
        metavar="SHELL",
        help="print a shell completion script (SHELL: bash or zsh): "
        'eval "$(imageworks-loader --print-completion bash)"; '
        "for zsh, save it as _imageworks-loader on $fpath",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, detail: str = "") -> argparse.ArgumentParser:
        if only is not None and name != only:
            return _Skipped()  # type: ignore[return-value]
        examples = "\n".join(f"  {line}" for line in EXAMPLES.get(name, []))
        epilog = (f"Examples:\n{examples}\n\n" if examples else "") + COMMAND_EPILOG_TAIL
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary + ("\n\n" + detail if detail else ""),
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return sub

    sub = command(
        "list",
        "List models as JSON: name, backend, locked, vision, roles, hash, verify.",
        "Sorted by name; hash is the first 12 hex digits of the aggregate sha256;\n"
        "verify is this host's last verify: ok, violated (until a verify passes) or\n"
        "never. --format table prints a table for a person instead.",
    )
    sub.add_argument("--role", help="only models that have this role")
    _add_format(sub)
    _add_common(sub)

    sub = command(
        "select",
        "Resolve a model to its endpoint, backend, served id and capabilities.",
        "With --role, the model is the one the role prefers that has the required\n"
        "capabilities (the role's defaults, e.g. vision for caption, plus --require).\n"
        "Exits 1 when the model is unknown or lacks a required capability.",
    )
    _model_name(sub.add_argument("name", nargs="?", help=NAME_HELP))
    sub.add_argument("--role", help="pick the model for this role instead of naming one")
    sub.add_argument("--require-vision", action="store_true", help="fail unless it has vision")
    sub.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="CAPABILITY",
        help="fail unless it has this capability (text, vision, audio, embedding, tools, "
        "thinking, reasoning, or a synonym such as tool_calls); repeatable",
    )
    _add_common(sub)

    sub = command(
        "list-roles",
        "List each role with its models, in the order select --role prefers them.",
        "One row per (role, model): role, name, priority (role_priority), backend,\n"
        "display_name, capabilities. Deprecated models are left out.",
    )
    _add_common(sub)

    sub = command(
        "metrics",
        "Show hash and lock state: every entry, or one entry with its full aggregate.",
        "For one entry, vision_probe is its last probe-vision result (null if never probed)\n"
        "and performance its rolling summary (record-performance).",
    )
    _model_name(sub.add_argument("name", nargs="?", help="one model (default: all)"))
    _model_name(
        sub.add_argument(
            "--name", dest="name_option", metavar="NAME", help="one model (the ImageWorks form)"
        )
    )
    _add_format(sub)
    _add_common(sub)

    sub = command(
        "explain",
        "Show every resolved field of a model and the layer it came from.",
        "Sources: curated, discovered, default (schema), override (--set); "
        "interpolated values also show their raw ${...} text.\n"
        "--field FIELD shows one field (or the fields beneath it, e.g. backend_config).\n"
        "--config KEY (no NAME) shows a config key's value and which file under conf/,\n"
        "command-line override or environment variable set it.",
    )
    _model_name(sub.add_argument("name", nargs="?", help=NAME_HELP))
    sub.add_argument("--field", help="one field, dotted (backend_config.port)")
    sub.add_argument(
        "--config", dest="config_key", metavar="KEY", help="a config key (backends.vllm.port)"
    )
    _add_common(sub)

    sub = command(
        "verify",
        "Recompute a model's artifact hashes, record them, and enforce its version lock.",
        "Prints the aggregate sha256, last_verified and the lock state as JSON.\n"
        "Exits 2 when a locked model's aggregate differs from the expected one (the\n"
        "expected hash and the last good record are kept) or an Ollama blob does not\n"
        "match its digest; 1 when the model's files cannot be found. Unchanged files\n"
        "(same size, mtime, ctime, inode) are not re-read; --rehash re-reads all.\n"
        "A lock made by the ImageWorks loader's subset formula still holds when the\n"
        "subset matches, with a warning that the weights are not covered.",
    )
    _model_name(sub.add_argument("name", nargs="?", help=NAME_HELP))
    sub.add_argument("--all", action="store_true", help="verify every model (give no NAME)")
    sub.add_argument("--rehash", action="store_true", help="ignore the hash cache")
    _add_common(sub)

    sub = command(
        "lock",
        "Lock a model's version, so verify fails if its artifacts change.",
    )
    _model_name(sub.add_argument("name", nargs="?", help=NAME_HELP))
    sub.add_argument(
        "--set-expected",
        action="store_true",
        help="hash the model's files as they are now (unchanged files come from the "
        "hash cache) and pin that aggregate as expected; refused if files are missing",
    )
    _add_common(sub)

    sub = command("unlock", "Clear a model's lock flag (the expected hash is kept).")
    _model_name(sub.add_argument("name", nargs="?", help=NAME_HELP))
    _add_common(sub)

    sub = command(
        "refresh",
        "Re-import, hash, verify, probe and regenerate the snapshot; write a report.",
        "Runs the doit task graph (the same as `doit refresh`), redoing only what\n"
        "changed, then writes a JSON report and a Markdown summary where the profile\n"
        "says (profile.report, profile.summary) and prints the report on stdout.\n"
        "Exits 2 when a version lock is violated, 1 when any other task failed.\n"
        "See docs/scheduled-refresh.md.",
    )
    sub.add_argument("--jobs", "-j", type=int, default=None, help="tasks run in parallel")
    _add_common(sub)

    sub = command(
        "activate-model",
        "Start a vLLM model as the one server on the canonical port (stopping the old one).",
        "Waits until it is healthy, then prints the state file as JSON. Nothing restarts\n"
        "when the model is already active and healthy. --stop (or the name none) stops\n"
        "the server and removes the state; with nothing running it does nothing.\n"
        "Exits 1 when the model is unknown or not vLLM-backed, orchestration is\n"
        "disabled, the port is held by another program, the lock is held too long,\n"
        "or the server fails to start (with the last lines of its log).\n"
        "See docs/orchestrator.md.",
    )
    _model_name(
        sub.add_argument("name", nargs="?", help="the model's logical name, or none to stop")
    )
    sub.add_argument("--stop", action="store_true", help="stop the active server")
    _add_common(sub)

    sub = command(
        "current-model",
        "Print the running vLLM server's state as JSON, or null when none runs.",
        "A state whose process has exited, or whose pid now belongs to another\n"
        "program, is cleared with a warning and reported as null.",
    )
    _add_format(sub)
    _add_common(sub)

    sub = command(
        "probe-vision",
        "Prove that a model really sees images: ask about an image, check, record.",
        "Without IMAGE, the built-in probe sends probe.rounds solid-colour squares in\n"
        "random colours and passes only if every colour is named. With IMAGE (PNG, JPEG,\n"
        "WebP or GIF, told by content), --expect WORD checks the answer; without it any\n"
        "non-empty answer passes, unchecked. Prints the result as JSON and records it\n"
        "in the discovered layer (probes.vision), failed probes too. Exits 1 with one\n"
        "line naming the cause when the model fails, is not vision-capable, or the\n"
        "image is unusable (the last two send and record nothing). Settings: probe.*\n"
        "(timeout_s, connect_timeout_s, retries, max_tokens, rounds).",
    )
    _model_name(sub.add_argument("name", nargs="?", help=NAME_HELP))
    sub.add_argument("image", nargs="?", help="an image file (default: the built-in colour probe)")
    sub.add_argument(
        "--expect", metavar="WORD", help="pass only if the answer names WORD (ignoring case)"
    )
    _add_common(sub)

    sub = command(
        "snapshot",
        "Regenerate the merged snapshot model_registry.json if its content changed.",
    )
    _add_common(sub)

    sub = command(
        "migrate",
        "Split a legacy single-file model_registry.json into the curated and discovered layers.",
        "Static fields go to the curated layer, dynamic ones (registry.dynamic_fields)\n"
        "to the discovered layer, in each entry's key order. Once the layers exist,\n"
        "entries found only in the snapshot (hand-edited) are adopted into the\n"
        "discovered layer. Running it again changes nothing.",
    )
    sub.add_argument("--dry-run", action="store_true", help="print the split; write nothing")
    _add_common(sub)

    _add_importers(command)
    _add_upkeep(command)
    return parser


EDIT_DETAIL = (
    "Values are parsed as --set parses them (JSON if it parses, else text). The\n"
    "field must be one the schema declares and the value must have its type; a\n"
    "dynamic field (registry.dynamic_fields) goes only into the discovered layer.\n"
    "The edit is checked by composing the registry, then written under the\n"
    "registry lock keeping the file's key order and indentation. --dry-run prints\n"
    "the diff and writes nothing. Refused: a symlinked layer file."
)


def _add_upkeep(command) -> None:
    """audit, set, unset, promote, demote, schema, show-backends, record-performance."""
    dry_run_help = "print the diff of the layer files; write nothing"
    sub = command(
        "audit",
        "Check the registry for common mistakes; print findings as JSON Lines.",
        "Each finding has severity (error, warning, info), code, entry, field, layer,\n"
        "message and, when there is one, fix. Exits 1 when any error remains.\n"
        "--fix applies only the fixes that lose nothing (a dynamic field moved from\n"
        'curated to discovered, a placeholder string such as "None" made null, a\n'
        "curated value equal to the discovered one dropped) through the locked save;\n"
        "--dry-run prints their diff instead. Codes: docs/health.md.",
    )
    _model_name(sub.add_argument("names", nargs="*", metavar="NAME", help="only these models"))
    sub.add_argument("--fix", action="store_true", help="apply the lossless fixes")
    sub.add_argument("--dry-run", action="store_true", help=dry_run_help)
    _add_common(sub)

    sub = command(
        "set",
        "Set fields of a model in a layer file (curated by default), checked before writing.",
        "A NAME not yet in the registry makes a new curated entry; it needs backend=.\n"
        + EDIT_DETAIL,
    )
    _model_name(sub.add_argument("name", nargs="?", help="the model's logical name"))
    sub.add_argument(
        "assignments", nargs="*", metavar="FIELD=VALUE", help="e.g. backend_config.port=9000"
    )
    sub.add_argument(
        "--layer", choices=["curated", "discovered"], help="the layer to edit (default: curated)"
    )
    sub.add_argument("--dry-run", action="store_true", help=dry_run_help)
    _add_common(sub)

    sub = command(
        "unset",
        "Remove fields of a model from a layer file (curated by default).",
        "The other layer's value, or the schema default, then shows.\n" + EDIT_DETAIL,
    )
    _model_name(sub.add_argument("name", nargs="?", help=NAME_HELP))
    sub.add_argument("fields", nargs="*", metavar="FIELD", help="e.g. backend_config.port")
    sub.add_argument(
        "--layer", choices=["curated", "discovered"], help="the layer to edit (default: curated)"
    )
    sub.add_argument("--dry-run", action="store_true", help=dry_run_help)
    _add_common(sub)

    sub = command(
        "promote",
        "Pin discovered values into the curated layer, so rediscovery cannot change them.",
        "With no FIELD: every static field the discovered layer holds and the curated\n"
        "layer does not. Refused: a dynamic field, a field discovered does not hold.\n"
        + EDIT_DETAIL,
    )
    _model_name(sub.add_argument("name", nargs="?", help=NAME_HELP))
    sub.add_argument("fields", nargs="*", metavar="FIELD", help="static fields to pin")
    sub.add_argument("--dry-run", action="store_true", help=dry_run_help)
    _add_common(sub)

    sub = command(
        "demote",
        "Unpin curated static fields: remove them from the curated layer.",
        "Each value moves to the discovered layer where that holds none, so nothing is\n"
        "lost; with no FIELD, every static field the curated entry holds.\n" + EDIT_DETAIL,
    )
    _model_name(sub.add_argument("name", nargs="?", help=NAME_HELP))
    sub.add_argument("fields", nargs="*", metavar="FIELD", help="static fields to unpin")
    sub.add_argument("--dry-run", action="store_true", help=dry_run_help)
    _add_common(sub)

    sub = command(
        "schema",
        "Print the JSON Schema (2020-12) of a layer file, for editors and validators.",
        "Generated from the entry model; docs/model_registry.layer.schema.json is a copy.\n"
        "See docs/health.md for pointing an editor at it.",
    )
    _add_common(sub)

    sub = command(
        "show-backends",
        "Show each backend in use: its endpoint, how many entries use it, whether it answers.",
        "One row per endpoint (backend and resolved URL). Each is asked once\n"
        "(GET /models under an OpenAI-style /v1 URL, else the URL itself), bounded by\n"
        "backends_check.timeout_s and backends_check.max_bytes. A table for a person;\n"
        "--json for scripts.",
    )
    sub.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    _add_common(sub)

    sub = command(
        "record-performance",
        "Record one request's timings; keep the rolling summary in the discovered layer.",
        "The summary (performance: rolling_samples, ttft_ms_avg,\n"
        "throughput_toks_per_s_avg, last_sample) covers the last performance.window\n"
        "samples, kept in the registry's state folder; concurrent recorders lose none.\n"
        "metrics NAME shows it.",
    )
    _model_name(sub.add_argument("name", nargs="?", help=NAME_HELP))
    sub.add_argument("--ttft-ms", type=float, help="time to the first token, in ms")
    sub.add_argument("--tokens", type=int, help="tokens generated")
    sub.add_argument("--duration-ms", type=float, help="the whole request, in ms")
    _add_common(sub)


IMPORT_DETAIL = (
    "Writes only the discovered layer (never the curated file), through the locked save;\n"
    "a second run with nothing changed writes nothing. Prints JSON: added, updated and\n"
    "missing entries, field by field (before/after). --dry-run prints the same and\n"
    "writes nothing. Fields the registry marks dynamic (artifacts, download_*, ...) and\n"
    "importers.refresh_fields are refreshed; other fields are filled only while unset."
)


def _add_importers(command) -> None:
    dry_run_help = "print what would change, write nothing"
    sub = command(
        "import-ollama",
        "Record the models of a running Ollama server (GET /api/tags, POST /api/show).",
        "The URL defaults to importers.ollama.url, which reads OLLAMA_HOST (a bare\n"
        "host:port is accepted), else http://127.0.0.1:11434. A tag already recorded\n"
        "(backend ollama, same served_model_id) updates every entry that records it; a\n"
        "model gone from Ollama is kept and marked (metadata.ollama_missing_since).\n"
        "New entries get backend_config.host from IMAGEWORKS_OLLAMA_HOST\n"
        "(default host.docker.internal).\n\n" + IMPORT_DETAIL,
    )
    sub.add_argument("--url", help="the Ollama server, e.g. http://127.0.0.1:11434 or host:port")
    sub.add_argument("--dry-run", action="store_true", help=dry_run_help)
    _add_common(sub)

    sub = command(
        "import-dir",
        "Record model folders (a config.json or a .gguf file) as registry entries.",
        "A PATH that is not itself a model folder is searched for model folders\n"
        "(to importers.rediscover.depth levels). A folder an entry already records\n"
        "(same backend, same resolved path) updates that entry.\n\n" + IMPORT_DETAIL,
    )
    sub.add_argument("dirs", nargs="*", metavar="PATH", help="a model folder, or a folder of them")
    sub.add_argument("--backend", help="the backend new entries get (default: vllm)")
    sub.add_argument("--name", help="the logical name for the one model folder given")
    sub.add_argument(
        "--hash",
        action="store_true",
        help="also record the artifacts' sha256 (the same hash cache as verify)",
    )
    sub.add_argument("--dry-run", action="store_true", help=dry_run_help)
    _add_common(sub)

    sub = command(
        "rediscover",
        "Record every model folder under paths.models; report entries whose folder has gone.",
        "Searches importers.rediscover.depth levels below paths.models\n"
        "(IMAGEWORKS_MODEL_ROOT). Entries whose folder has gone are reported, not\n"
        "deleted.\n\n" + IMPORT_DETAIL,
    )
    sub.add_argument("--dry-run", action="store_true", help=dry_run_help)
    _add_common(sub)


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separate ``key=value`` config overrides from the command's arguments.
    After ``set``, a word whose key starts with an entry field
    (``backend_config.port=9000``) is the command's, not the config's."""
    arguments: list[str] = []
    overrides: list[str] = []
    takes_value = False
    config_roots = _config_roots() if argv and argv[0] == "set" else None
    for word in argv:
        if takes_value:
            arguments.append(word)
            takes_value = False
        elif word.startswith("-"):
            arguments.append(word)
            takes_value = word in _VALUE_OPTIONS
        elif config_roots is not None and "=" in word and len(arguments) > 1:
            root = re.split(r"[./=]", word.lstrip("+~"), maxsplit=1)[0]
            (overrides if root in config_roots else arguments).append(word)
        elif "=" in word and arguments:
            overrides.append(word)
        else:
            arguments.append(word)
    return arguments, overrides


def _config_roots() -> set[str]:
    """The config's top-level keys and groups: after ``set NAME``, only words
    starting with one of these are Hydra overrides; the rest are FIELD=VALUE."""
    from loader.config import CONFIG_NAME, conf_dir

    folder = conf_dir()
    roots = {p.name for p in folder.iterdir() if p.is_dir()} | {"hydra"}
    for line in (folder / f"{CONFIG_NAME}.yaml").read_text(encoding="utf-8").splitlines():
        match = re.match(r"([A-Za-z_][\w-]*):", line)
        if match:
            roots.add(match.group(1))
    from loader.registry.schema import RegistryEntry

    # A name both an entry field and a config key (backend, roles, performance)
    # is the entry's here.
    return roots - set(RegistryEntry.model_fields) - {"defaults"}


def _operation_arguments(args: argparse.Namespace) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for key in (
        "name",
        "role",
        "url",
        "backend",
        "image",
        "expect",
        "jobs",
        "layer",
        "ttft_ms",
        "tokens",
        "duration_ms",
        "field",
        "config_key",
    ):
        if getattr(args, key, None) is not None:
            arguments[key] = getattr(args, key)
    for key in ("dirs", "names", "fields", "assignments"):
        if getattr(args, key, None):
            arguments[key] = list(getattr(args, key))
    if getattr(args, "name_option", None) is not None:
        if arguments.get("name") not in (None, args.name_option):
            raise UsageError(f"{args.command}: give NAME or --name NAME, not both")
        arguments["name"] = args.name_option
    for key in ("all", "rehash", "set_expected", "dry_run", "hash", "stop", "fix", "json"):
        if getattr(args, key, False):
            arguments[key] = True
    if args.command == "select":
        require = list(args.require)
        if args.require_vision:
            require.append("vision")
        arguments["require"] = require
    return arguments


def _uses_hydra(args: argparse.Namespace, overrides: Sequence[str]) -> bool:
    if args.cfg or args.multirun or args.info or args.resolve or args.package:
        return True
    return any(o.startswith(("hydra/", "hydra.", "+hydra", "~hydra")) for o in overrides)


def _hydra_argv(
    args: argparse.Namespace, arguments: dict[str, Any], overrides: list[str]
) -> list[str]:
    from loader.frontdoors.apps import quote_override_value

    argv: list[str] = []
    if args.cfg:
        argv += ["--cfg", args.cfg]
    if args.resolve:
        argv.append("--resolve")
    if args.package:
        argv += ["--package", args.package]
    if args.multirun:
        argv.append("--multirun")
    if args.info:
        argv += ["--info", args.info]
    swept = {o.split("=", 1)[0] for o in overrides}
    for key, value in arguments.items():
        if key not in swept:
            argv.append(f"{key}={quote_override_value(value)}")
    if args.entry_overrides:
        argv.append(f"entry_overrides={quote_override_value(args.entry_overrides)}")
    return argv + overrides


def run(argv: Sequence[str]) -> int:
    if argv and argv[0] == COMPLETE_NAMES:
        from loader.frontdoors.completion import print_model_names

        return print_model_names(argv[1:])
    if not argv:  # no command: the help, as `git` and `ollama` do
        return write_stdout(build_parser().format_help())
    words, overrides = split_overrides(argv)
    command = words[0] if words and not words[0].startswith("-") else None
    args = build_parser(only=command).parse_args(words)
    arguments = _operation_arguments(args)
    if _uses_hydra(args, overrides):
        from loader.frontdoors.apps import run_app

        return run_app(args.command, _hydra_argv(args, arguments, overrides))

    from loader.config import load_config
    from loader.operations import OPERATIONS
    from loader.registry.core import Registry, use_registry

    config = load_config(overrides)
    for key in OPERATIONS[args.command].arguments:
        # `select name=...` as a config override means the same as the positional
        if key not in arguments and config.get(key) not in (None, False, []):
            arguments[key] = config.get(key)
    registry = Registry(config, entry_overrides=args.entry_overrides, defer_snapshot_refresh=True)
    use_registry(registry)
    result = OPERATIONS[args.command].call(registry, arguments)
    if getattr(args, "format", None) == "table":
        from loader.frontdoors.tables import render

        code = write_stdout(render(args.command, result, registry))
    else:
        code = emit(args.command, result)
    registry.flush_snapshot()  # only after success: a refused command changes no file
    return code


def _batched(pieces: Iterable[str], size: int = 1 << 16) -> Iterator[str]:
    """Small encoder pieces joined into writes of about ``size`` characters."""
    batch: list[str] = []
    length = 0
    for piece in pieces:
        batch.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(batch)
            batch, length = [], 0
    if batch:
        yield "".join(batch)


def to_json(result: Any) -> str:
    """Indented JSON; a list of rows prints one row per line (easy to scan and
    grep, and the C encoder makes it cheap for a thousand models)."""
    if isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        return "[\n" + ",\n".join("  " + json.dumps(row) for row in result) + "\n]"
    return json.dumps(result, indent=2)


def emit(command: str, result: Any, *, compact: bool = False) -> int:
    """Print a result as JSON on stdout; an ``Outcome`` also sets the exit code.
    ``compact``: on one line (a sweep prints JSON Lines, one job per line)."""
    from loader.operations import Outcome, Text

    code = EXIT_OK
    if isinstance(result, Text):
        for line in result.message.splitlines():
            print(f"{PROG} {command}: {line}", file=sys.stderr)
        return _write([result.text], result.exit_code)
    if isinstance(result, Outcome):
        if result.message:
            for line in result.message.splitlines():
                print(f"{PROG} {command}: {line}", file=sys.stderr)
        result, code = result.data, result.exit_code
    if compact:
        return _write([json.dumps(result, separators=(",", ":")), "\n"], code)
    if isinstance(result, dict):
        # Written as it is encoded: a big report (an import of 10,000 tags)
        # never exists twice over as one string.
        encoded = _batched(json.JSONEncoder(indent=2).iterencode(result))
        return _write(itertools.chain(encoded, ["\n"]), code)
    return _write([to_json(result), "\n"], code)


def write_stdout(text: str) -> int:
    """Write ``text`` on stdout; a reader that stopped early is not an error."""
    return _write([text], EXIT_OK)


def _write(pieces: Iterable[str], code: int) -> int:
    try:
        for piece in pieces:
            sys.stdout.write(piece)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): say nothing more, here or at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code. Leaves the garbage collector
    as it found it (a program calling this keeps its own GC settings)."""
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except RegistryError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def console_main() -> NoReturn:
    """The ``imageworks-loader`` executable: ``main`` then an immediate exit.

    Tearing down a loaded 1,000-model registry at interpreter exit frees ~10^6
    objects one by one, which took a third of a large ``list``'s wall time.
    Everything the command writes is flushed or closed by now, so the process
    leaves without that teardown.
    """
    # A one-shot process holding ~10^6 acyclic objects after a load: the cyclic
    # collector's passes over them cost a quarter of a large `list`, and free
    # nothing. Only this executable may turn it off; `main()` never does.
    gc.disable()
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing left to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    console_main()
