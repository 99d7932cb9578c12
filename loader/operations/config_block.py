"""The operation arguments of ``conf/config.yaml``, written from ``OPERATIONS``.

Every operation argument is a config key (``name``, ``dry_run`` ...), so the
Hydra apps take it as an override and ``--cfg job`` shows it. The keys and
their defaults sit in ``conf/config.yaml`` between two marker lines, written
from the ``Param`` declarations; a key two operations share must be declared
alike.

    uv run python -m loader.operations.config_block           # rewrite the block
    uv run python -m loader.operations.config_block --check   # exit 1 if stale
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from loader.operations.spec import Param

BEGIN = "# --- operation arguments (generated from loader.operations.OPERATIONS) ---"
END = "# --- end of operation arguments ---"

_PREAMBLE = """\
# Arguments of the operation being run. The CLI fills them from its own
# arguments; Hydra apps take them as overrides (`name=...`, `-m name=a,b`).
# Declared once, in loader/operations/table.py; rewrite these lines with
# `uv run python -m loader.operations.config_block`."""


def shared_params() -> dict[str, tuple[Param, list[str], set[str]]]:
    """Each argument key: its first declaration, the operations using it and
    their help texts."""
    from loader.operations.table import OPERATIONS

    keys: dict[str, tuple[Param, list[str], set[str]]] = {}
    for op in OPERATIONS.values():
        for param in op.params:
            if param.name not in keys:
                keys[param.name] = (param, [op.name], {param.help})
                continue
            first, users, helps = keys[param.name]
            helps.add(param.help)
            if (first.kind, first.config_default) != (param.kind, param.config_default):
                raise ValueError(
                    f"argument {param.name!r}: {op.name} declares it unlike {users[0]} "
                    "(one config key needs one type and default)"
                )
            users.append(op.name)
    return keys


def _yaml_value(value: object) -> str:
    return "null" if value is None else json.dumps(value)


def render_block() -> str:
    """The lines between (and including) the markers."""
    lines = [BEGIN, _PREAMBLE]
    for name, (param, users, helps) in shared_params().items():
        comment = ", ".join(users) + (f": {param.help}" if len(helps) == 1 else "")
        lines += textwrap.wrap(
            comment, 88, initial_indent="# ", subsequent_indent="#   ", break_on_hyphens=False
        )
        lines.append(f"{name}: {_yaml_value(param.config_default)}")
    lines.append(END)
    return "\n".join(lines)


def rewritten(text: str) -> str:
    """``text`` (a config.yaml) with its block of operation arguments rewritten."""
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"config.yaml: the markers {BEGIN!r} and {END!r} are missing")
    return head + render_block() + tail


def main(argv: list[str] | None = None) -> int:
    from loader.config import CONFIG_NAME, conf_dir

    args = sys.argv[1:] if argv is None else argv
    path = Path(conf_dir()) / f"{CONFIG_NAME}.yaml"
    text = path.read_text(encoding="utf-8")
    new = rewritten(text)
    if "--check" in args:
        if new != text:
            print(
                f"{path}: the operation arguments are stale; run {__spec__.name}", file=sys.stderr
            )
            return 1
        return 0
    if new != text:
        path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
