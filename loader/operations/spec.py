"""How an operation is declared: its function and its parameters.

A ``Param`` says everything the front doors need to offer one argument: the
CLI builds its option or positional from it, ``conf/config.yaml`` holds its
config key and default (the block between the ``operation arguments``
markers, written by ``loader.operations.config_block``), and the Hydra apps
and doit tasks pass it by that key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from loader.errors import OverrideError

if TYPE_CHECKING:
    from loader.registry.core import Registry


class Shortcut(NamedTuple):
    """A CLI flag that adds one value to a list parameter
    (``--require-vision`` adds ``vision`` to ``require``)."""

    flag: str
    value: str
    help: str


class Param(NamedTuple):
    """One argument of an operation.

    ``name`` is its config key (``name=...`` in a Hydra app) and the keyword of
    the operation's function; ``kind`` is ``str``, ``int``, ``float``, ``bool``
    (a flag) or ``list`` (words); ``default`` is its value in the config.
    ``positional`` ones are CLI words (a list takes any number); the others are
    options, ``--name-with-dashes`` unless ``flag`` says otherwise.
    ``required`` ones are checked when the operation is called (the CLI parser
    leaves every positional optional, so the error names the operation).
    (A named tuple, not a dataclass: a CLI run imports this, and a dataclass
    with this many fields costs a millisecond to define.)
    """

    name: str
    kind: type = str
    help: str = ""
    default: Any = None
    positional: bool = False
    required: bool = False
    flag: str | None = None
    short: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    model_names: bool = False  # its values are model names (shell completion)
    option_alias: str | None = None  # also accepted as this option (metrics --name)
    alias_help: str = ""
    shortcuts: tuple[Shortcut, ...] = ()

    @property
    def option(self) -> str:
        """The CLI option of a non-positional parameter."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def config_default(self) -> Any:
        """Its value in the config when nobody gives it."""
        if self.default is not None:
            return self.default
        return False if self.kind is bool else [] if self.kind is list else None

    @property
    def takes_value(self) -> bool:
        """Whether the CLI option is followed by a value word."""
        return not self.positional and self.kind is not bool

    def with_help(self, help: str) -> Param:
        return self._replace(help=help)


class Operation(NamedTuple):
    """An operation: its name, its function and its parameters."""

    name: str
    run: Callable[..., Any]
    params: tuple[Param, ...] = ()
    # It runs other operations (refresh runs the pipeline's): ``call`` hands
    # it the ``invoke`` it was called through, as its ``invoke`` keyword.
    runs_operations: bool = False

    @property
    def arguments(self) -> tuple[str, ...]:
        """Argument names, as they appear in the config (``name=...``)."""
        return tuple(p.name for p in self.params)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.required)

    @property
    def summary(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0]

    def call(
        self,
        registry: Registry,
        arguments: dict[str, Any],
        invoke: Callable[..., Any] | None = None,
    ) -> Any:
        unknown = sorted(set(arguments) - set(self.arguments))
        if unknown:  # a door passing a key no Param declares is a bug (exit 3)
            raise TypeError(f"{self.name}: no parameter {', '.join(map(repr, unknown))}")
        for key in self.required:
            if arguments.get(key) in (None, ""):
                raise OverrideError(f"{self.name}: missing argument {key!r}")
        given = dict(arguments)
        if self.runs_operations:
            given["invoke"] = invoke
        return self.run(registry, **given)
