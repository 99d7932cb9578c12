"""``OPERATIONS`` is the one declaration of every operation's parameters
(issue 16): the CLI parser, the config's argument keys and the operations'
functions agree with it."""

from __future__ import annotations

import argparse
import inspect

from loader.config import CONFIG_NAME, conf_dir
from loader.operations import OPERATIONS
from loader.operations.config_block import rewritten, shared_params


def test_every_parameter_is_an_argument_of_its_function():
    for op in OPERATIONS.values():
        signature = inspect.signature(op.run).parameters
        for param in op.params:
            assert param.name in signature, (op.name, param.name)
        extra = [
            name
            for name, p in list(signature.items())[1:]
            if name not in op.arguments and not (name == "invoke" and op.runs_operations)
        ]
        assert not extra, (op.name, extra)  # a function argument no door can give


def test_the_config_block_is_written_from_the_declarations():
    path = conf_dir() / f"{CONFIG_NAME}.yaml"
    text = path.read_text(encoding="utf-8")
    assert rewritten(text) == text, "run: uv run python -m loader.operations.config_block"


def test_a_shared_key_has_one_type_and_default_and_is_in_the_config():
    from loader.config import load_config

    config = load_config()
    for name, (param, _users, _helps) in shared_params().items():
        assert config.get(name) == param.config_default, name


def test_the_cli_offers_each_declared_parameter():
    from loader.frontdoors.parser import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(commands.choices) == list(OPERATIONS)
    for name, sub in commands.choices.items():
        dests = {a.dest for a in sub._actions}
        options = {o for a in sub._actions for o in a.option_strings}
        for param in OPERATIONS[name].params:
            assert param.name in dests, (name, param.name)
            if not param.positional:
                assert param.option in options, (name, param.option)
