"""The ``imageworks-loader`` command line: argument translation and exit codes.

No logic lives here: each command is one operation of ``loader.operations``,
run through ``invoke``, its JSON result printed on stdout. Errors are one line
on stderr. The parser is ``loader.frontdoors.parser``, the words-to-arguments
step ``loader.frontdoors.arguments``, the printing ``loader.frontdoors.output``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from loader.errors import as_registry_error
from loader.frontdoors.arguments import operation_arguments, split_overrides
from loader.frontdoors.commands import EXAMPLES
from loader.frontdoors.output import (
    COMPLETE_NAMES,
    PROG,
    emit,
    print_error,
    print_invocation,
    write_stdout,
)
from loader.frontdoors.parser import UsageError, build_parser
from loader.logs import front_door_logging, use_config

# The names tests and scripts import from here.
__all__ = [
    "COMPLETE_NAMES",
    "EXAMPLES",
    "PROG",
    "UsageError",
    "build_parser",
    "console_main",
    "emit",
    "main",
    "run",
    "split_overrides",
    "write_stdout",
]


def _uses_hydra(args: argparse.Namespace, overrides: Sequence[str]) -> bool:
    if args.cfg or args.multirun or args.info or args.resolve or args.package:
        return True
    return any(o.startswith(("hydra/", "hydra.", "+hydra", "~hydra")) for o in overrides)


def _hydra_argv(
    args: argparse.Namespace, arguments: dict[str, Any], overrides: list[str]
) -> list[str]:
    from loader.frontdoors.hydra_app import quote_override_value

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
    arguments = operation_arguments(args)
    if _uses_hydra(args, overrides):
        from loader.frontdoors.hydra_app import run_app

        return run_app(args.command, _hydra_argv(args, arguments, overrides))

    from loader.config import load_config
    from loader.operations.invoke import invoke
    from loader.operations.table import OPERATIONS
    from loader.registry.core import Registry, use_registry

    config = load_config(overrides)
    use_config(config)
    for key in OPERATIONS[args.command].arguments:
        # `select name=...` as a config override means the same as the positional
        if key not in arguments and config.get(key) not in (None, False, []):
            arguments[key] = config.get(key)
    registry = Registry(config, entry_overrides=args.entry_overrides, defer_snapshot_refresh=True)
    use_registry(registry)
    invocation = invoke(args.command, arguments, lambda: registry)
    if invocation.error is None and getattr(args, "format", None) == "table":
        from loader.frontdoors.tables import render

        code = write_stdout(render(args.command, invocation.data, registry))
    else:
        code = print_invocation(args.command, invocation)
    if invocation.error is None:
        registry.flush_snapshot()  # only after success: a refused command changes no file
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code. Leaves the garbage collector
    as it found it (a program calling this keeps its own GC settings)."""
    try:
        with front_door_logging(PROG):
            return run(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # on purpose (its own exit code) or a bug (exit 3)
        return print_error(PROG, as_registry_error(exc))


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
