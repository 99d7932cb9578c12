"""The ``imageworks-loader`` command line: argument translation and exit codes.

No logic lives here: each command calls one function in ``loader.operations``
and prints its JSON result on stdout. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .errors import EXIT_OK, RegistryError

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
  -m, --multirun             sweep, e.g. -m "name='qwen3_8b_(Q4_K_M)','llama_8.0b_(Q5_K_M)'"
                             (quote names that hold parentheses, Hydra-style)

Environment: IMAGEWORKS_REGISTRY_DIR sets registry.dir (default: configs).
Exit codes: 0 success; 1 usage error, unknown model, missing capability;
2 integrity failure (version lock violated, blob digest mismatch)."""

NAME_HELP = "the model's logical name (or sweep several: -m \"name='a','b'\")"

# Options whose next word is their value, so it is never taken as an override.
_VALUE_OPTIONS = {"--set", "--role", "--require", "--cfg", "-c", "--package", "-p"}
_VALUE_OPTIONS |= {"--url", "--backend", "--name"}  # the importers'
_HYDRA_FLAGS = {"--cfg", "-c", "--resolve", "--package", "-p", "-m", "--multirun", "--info", "-i"}


class UsageError(RegistryError):
    """The command line itself is wrong (exit 1, like every usage error)."""


class _Parser(argparse.ArgumentParser):
    # argparse would print its usage block and exit 2, the integrity code.
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="entry_overrides",
        action="append",
        default=[],
        metavar="NAME.FIELD=VALUE",
        help="override one entry's field for this run only (repeatable)",
    )
    hydra = parser.add_argument_group("Hydra flags")
    hydra.add_argument("--cfg", "-c", choices=["job", "hydra", "all"], help="print the config")
    hydra.add_argument("--resolve", action="store_true", help="resolve interpolations in --cfg")
    hydra.add_argument("--package", "-p", help="with --cfg, print only this package")
    hydra.add_argument("--multirun", "-m", action="store_true", help="run a Hydra sweep")
    hydra.add_argument("--info", "-i", nargs="?", const="all", help="Hydra's --info")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="A deterministic, layered model registry for local LLM/VLM serving.",
        epilog=OVERRIDES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str, detail: str = "") -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary + ("\n\n" + detail if detail else ""),
            epilog=OVERRIDES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return sub

    sub = command(
        "list",
        "List models as JSON: name, backend, locked, vision, roles, hash.",
        "Sorted by name; hash is the first 12 hex digits of the aggregate sha256.",
    )
    sub.add_argument("--role", help="only models that have this role")
    _add_common(sub)

    sub = command(
        "select",
        "Resolve a model to its endpoint, backend, served id and capabilities.",
        "Exits 1 when the model is unknown or lacks a required capability.",
    )
    sub.add_argument("name", nargs="?", help=NAME_HELP)
    sub.add_argument("--require-vision", action="store_true", help="fail unless it has vision")
    sub.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="CAPABILITY",
        help="fail unless it has this capability (text, vision, audio, embedding, tools, "
        "thinking, reasoning, or a synonym); repeatable",
    )
    _add_common(sub)

    sub = command(
        "metrics",
        "Show hash and lock state: every entry, or one entry with its full aggregate.",
    )
    sub.add_argument("name", nargs="?", help="one model (default: all)")
    _add_common(sub)

    sub = command(
        "explain",
        "Show every resolved field of a model and the layer it came from.",
        "Sources: curated, discovered, default (schema), override (--set); "
        "interpolated values also show their raw ${...} text.",
    )
    sub.add_argument("name", nargs="?", help=NAME_HELP)
    _add_common(sub)

    sub = command(
        "verify",
        "Recompute a model's artifact hashes, record them, and enforce its version lock.",
        "Prints the aggregate sha256, last_verified and the lock state as JSON.\n"
        "Exits 2 when a locked model's aggregate differs from the expected one (the\n"
        "expected hash and the last good record are kept) or an Ollama blob does not\n"
        "match its digest; 1 when the model's files cannot be found. Unchanged files\n"
        "(same size, mtime, ctime, inode) are not re-read; --rehash re-reads all.",
    )
    sub.add_argument("name", nargs="?", help=NAME_HELP)
    sub.add_argument("--all", action="store_true", help="verify every model, then report")
    sub.add_argument("--rehash", action="store_true", help="ignore the hash cache")
    _add_common(sub)

    sub = command(
        "lock",
        "Lock a model's version, so verify fails if its artifacts change.",
    )
    sub.add_argument("name", nargs="?", help=NAME_HELP)
    sub.add_argument(
        "--set-expected",
        action="store_true",
        help="record the model's aggregate (computed now if none is stored) as expected",
    )
    _add_common(sub)

    sub = command("unlock", "Clear a model's lock flag (the expected hash is kept).")
    sub.add_argument("name", nargs="?", help=NAME_HELP)
    _add_common(sub)

    sub = command(
        "refresh",
        "Re-import, hash, verify, probe and regenerate the snapshot; write a report.",
        "Runs the doit task graph (the same as `doit refresh`), redoing only what\n"
        "changed, then writes a JSON report and a Markdown summary where the profile\n"
        "says (profile.report, profile.summary) and prints the report on stdout.\n"
        "Exits 2 when a version lock is violated, 1 when any other task failed.\n"
        "Example: imageworks-loader refresh profile=ci registry.dir=/srv/configs",
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
    sub.add_argument("name", nargs="?", help="the model's logical name, or none to stop")
    sub.add_argument("--stop", action="store_true", help="stop the active server")
    _add_common(sub)

    sub = command(
        "current-model",
        "Print the running vLLM server's state as JSON, or null when none runs.",
        "A state whose process has exited, or whose pid now belongs to another\n"
        "program, is cleared with a warning and reported as null.",
    )
    _add_common(sub)

    sub = command(
        "snapshot",
        "Regenerate the merged snapshot model_registry.json if its content changed.",
    )
    _add_common(sub)

    _add_importers(command)
    return parser


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
    """Separate ``key=value`` config overrides from the command's arguments."""
    arguments: list[str] = []
    overrides: list[str] = []
    takes_value = False
    for word in argv:
        if takes_value:
            arguments.append(word)
            takes_value = False
        elif word.startswith("-"):
            arguments.append(word)
            takes_value = word in _VALUE_OPTIONS
        elif "=" in word and arguments:
            overrides.append(word)
        else:
            arguments.append(word)
    return arguments, overrides


def _operation_arguments(args: argparse.Namespace) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for key in ("name", "role", "url", "backend", "jobs"):
        if getattr(args, key, None) is not None:
            arguments[key] = getattr(args, key)
    if getattr(args, "dirs", None):
        arguments["dirs"] = list(args.dirs)
    for key in ("all", "rehash", "set_expected", "dry_run", "hash", "stop"):
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
    from .apps import quote_override_value

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
    words, overrides = split_overrides(argv)
    args = build_parser().parse_args(words)
    arguments = _operation_arguments(args)
    if _uses_hydra(args, overrides):
        from .apps import run_app

        return run_app(args.command, _hydra_argv(args, arguments, overrides))

    from .config import load_config
    from .operations import OPERATIONS
    from .registry import Registry, use_registry

    config = load_config(overrides)
    for key in OPERATIONS[args.command].arguments:
        # `select name=...` as a config override means the same as the positional
        if key not in arguments and config.get(key) not in (None, False, []):
            arguments[key] = config.get(key)
    registry = Registry(config, entry_overrides=args.entry_overrides, defer_snapshot_refresh=True)
    use_registry(registry)
    code = emit(args.command, OPERATIONS[args.command].call(registry, arguments))
    registry.flush_snapshot()  # only after success: a refused command changes no file
    return code


def to_json(result: Any) -> str:
    """Indented JSON; a list of rows prints one row per line (easy to scan and
    grep, and the C encoder makes it cheap for a thousand models)."""
    if isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        return "[\n" + ",\n".join("  " + json.dumps(row) for row in result) + "\n]"
    return json.dumps(result, indent=2)


def emit(command: str, result: Any, *, compact: bool = False) -> int:
    """Print a result as JSON on stdout; an ``Outcome`` also sets the exit code.
    ``compact``: on one line (a sweep prints JSON Lines, one job per line)."""
    from .operations import Outcome

    code = EXIT_OK
    if isinstance(result, Outcome):
        if result.message:
            for line in result.message.splitlines():
                print(f"{PROG} {command}: {line}", file=sys.stderr)
        result, code = result.data, result.exit_code
    try:
        text = json.dumps(result, separators=(",", ":")) if compact else to_json(result)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): say nothing more, here or at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    # A one-shot process holding ~10^6 acyclic objects after a load: the cyclic
    # collector's passes over them cost a quarter of a large `list`, and free nothing.
    gc.disable()
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
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing left to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    console_main()
