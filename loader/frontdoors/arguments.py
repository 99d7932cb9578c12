"""From the command line's words to an operation's arguments.

``split_overrides`` tells the command's own words from ``key=value`` config
overrides; ``operation_arguments`` reads the parsed words back as the
arguments ``OPERATIONS`` declares.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

from loader.frontdoors.parser import UsageError, alias_dest, shortcut_dest, value_options


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separate ``key=value`` config overrides from the command's arguments.
    After ``set``, a word whose key starts with an entry field
    (``backend_config.port=9000``) is the command's, not the config's."""
    arguments: list[str] = []
    overrides: list[str] = []
    takes_value = False
    config_roots = _config_roots() if argv and argv[0] == "set" else None
    options = value_options()
    for word in argv:
        if takes_value:
            arguments.append(word)
            takes_value = False
        elif word.startswith("-"):
            arguments.append(word)
            takes_value = word in options
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


def operation_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments given on the command line, by their config keys; what
    was not given is left out (the config's value, or the default, applies)."""
    from loader.operations.table import OPERATIONS

    arguments: dict[str, Any] = {}
    for param in OPERATIONS[args.command].params:
        value = getattr(args, param.name, None)
        if param.kind is bool:
            if value:
                arguments[param.name] = True
        elif param.kind is list:
            values = list(value or [])
            values += [s.value for s in param.shortcuts if getattr(args, shortcut_dest(s.flag))]
            if values or param.shortcuts:  # (select always passes its require list)
                arguments[param.name] = values
        elif value is not None:
            arguments[param.name] = value
        if param.option_alias:
            alias = getattr(args, alias_dest(param), None)
            if alias is not None:
                if arguments.get(param.name) not in (None, alias):
                    word = param.name.upper()
                    raise UsageError(
                        f"{args.command}: give {word} or {param.option_alias} {word}, not both"
                    )
                arguments[param.name] = alias
    return arguments
