"""The ``imageworks-loader`` argument parser, built from ``OPERATIONS``.

Each command's arguments come from its operation's ``Param`` declarations;
its description and examples from ``loader.frontdoors.commands``. Every
command also takes ``--set`` and the Hydra flags; ``list``, ``metrics`` and
``current-model`` take ``--format``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, NoReturn

from loader.errors import RegistryError
from loader.frontdoors.commands import (
    COMMAND_EPILOG_TAIL,
    COMMANDS,
    EXAMPLES,
    OVERRIDES_HELP,
    SET_HELP,
)
from loader.frontdoors.output import PROG
from loader.operations.spec import Operation, Param

TABLE_COMMANDS = ("list", "metrics", "current-model")  # the ones --format table knows
# The CLI's own options that take a value (besides the operations' own).
CLI_VALUE_OPTIONS = frozenset({"--set", "--cfg", "-c", "--package", "-p", "--format"})


class UsageError(RegistryError):
    """The command line itself is wrong (exit 1, like every usage error)."""


def _terminal_columns() -> int:
    """The width ``shutil.get_terminal_size`` would give (``COLUMNS``, else the
    terminal, else 80), without importing shutil (and its compression
    modules) on every run: argparse's formatter imports it for each parser."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples kept as written, at the terminal's width."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2  # argparse's own margin
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    # argparse would print its usage block and exit 2, the integrity code.
    def error(self, message: str) -> NoReturn:
        choice = re.match(r"argument COMMAND: invalid choice: '(.*?)'", message)
        if choice:  # (a parser built for one command lists the others from a full one)
            message = _unknown_command(choice.group(1), subcommands(build_parser()))
        raise UsageError(f"{message} (see {self.prog} --help)")


def _unknown_command(word: str, commands: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, commands, n=2, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown command {word!r}{hint} (commands: {', '.join(commands)})"


def subcommands(parser: argparse.ArgumentParser) -> list[str]:
    """The command names of a parser ``build_parser`` made."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


class _VersionAction(argparse.Action):
    # Reads the package metadata only when asked: it costs a few ms at import.
    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> NoReturn:
        from importlib.metadata import version

        print(f"{PROG} {version('imageworks-loader')}")
        parser.exit()


class _CompletionAction(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> NoReturn:
        from loader.frontdoors.completion import completion_script

        sys.stdout.write(completion_script(parser, str(values)))
        parser.exit()


def value_options() -> frozenset[str]:
    """Every option whose next word is its value, so it is never taken as a
    config override (``--name x=1`` names a model ``x=1``)."""
    from loader.operations.table import OPERATIONS

    options = set(CLI_VALUE_OPTIONS)
    for op in OPERATIONS.values():
        for param in op.params:
            if param.option_alias:
                options.add(param.option_alias)
            if param.takes_value:
                options.update(o for o in (param.option, param.short) if o)
    return frozenset(options)


def shortcut_dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def alias_dest(param: Param) -> str:
    return f"{param.name}_option"


def _model_names(action: argparse.Action, param: Param) -> argparse.Action:
    if param.model_names:  # completed from the registry by the scripts of `completion`
        # shtab reads ``complete`` off the action; argparse declares no such field.
        action.complete = {  # type: ignore[attr-defined]
            "bash": "_imageworks_loader_models",
            "zsh": "_imageworks_loader_models",
        }
    return action


def _add_param(parser: argparse.ArgumentParser, param: Param) -> None:
    extra: dict[str, Any] = {}
    if param.metavar:
        extra["metavar"] = param.metavar
    if param.choices:
        extra["choices"] = list(param.choices)
    if param.positional:
        nargs = "*" if param.kind is list else "?"
        _model_names(parser.add_argument(param.name, nargs=nargs, help=param.help, **extra), param)
        if param.option_alias:
            action = parser.add_argument(
                param.option_alias,
                dest=alias_dest(param),
                metavar=param.name.upper(),
                help=param.alias_help,
            )
            _model_names(action, param)
        return
    for shortcut in param.shortcuts:
        parser.add_argument(shortcut.flag, action="store_true", help=shortcut.help)
    flags = [f for f in (param.option, param.short) if f]
    dest: dict[str, Any] = {} if param.flag is None else {"dest": param.name}
    if param.kind is bool:
        parser.add_argument(*flags, action="store_true", help=param.help, **dest)
    elif param.kind is list:
        parser.add_argument(*flags, action="append", default=[], help=param.help, **dest, **extra)
    else:
        kind: dict[str, Any] = {} if param.kind is str else {"type": param.kind}
        parser.add_argument(*flags, **kind, help=param.help, **dest, **extra)


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=["json", "table"],
        default="json",
        help="json (the default, for scripts) or table (for a person: name, backend, size, "
        "locked, last verify and probe with their age, served now)",
    )


def add_common(parser: argparse.ArgumentParser) -> None:
    """``--set`` and the Hydra flags, which every command takes."""
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


def _add_command(commands: Any, op: Operation) -> None:
    summary, detail = COMMANDS[op.name]
    examples = "\n".join(f"  {line}" for line in EXAMPLES.get(op.name, []))
    epilog = (f"Examples:\n{examples}\n\n" if examples else "") + COMMAND_EPILOG_TAIL
    sub = commands.add_parser(
        op.name,
        help=summary,
        description=summary + ("\n\n" + detail if detail else ""),
        epilog=epilog,
        formatter_class=_Formatter,
    )
    for param in op.params:
        _add_param(sub, param)
    if op.name in TABLE_COMMANDS:
        add_format(sub)
    add_common(sub)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; ``only``: build just that command's parser
    (a run needs one; building all of them costs more than a ``list`` itself)."""
    from loader.operations.table import OPERATIONS

    parser = _Parser(
        prog=PROG,
        description="A deterministic, layered model registry for local LLM/VLM serving.",
        epilog=OVERRIDES_HELP,
        formatter_class=_Formatter,
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
    for op in OPERATIONS.values():
        if only is None or op.name == only:
            _add_command(commands, op)
    return parser
