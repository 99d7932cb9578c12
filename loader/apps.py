"""Every operation as a Hydra app, so Hydra's own features work.

    python -m loader.apps OPERATION [hydra overrides and flags]
    python -m loader.apps list role=caption --cfg job
    python -m loader.apps explain -m 'name=a,b'

Operation arguments are config keys (``name``, ``role``, ``require``). The CLI
hands over to this module when it sees a Hydra flag (``--cfg``, ``-m`` ...).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from .config import conf_dir
from .errors import EXIT_OK, EXIT_USAGE, OverrideError, RegistryError
from .operations import OPERATIONS


def quote_override_value(value: Any) -> str:
    """A value in Hydra's override grammar (names hold parentheses)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(quote_override_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def check_override_grammar(hydra_args: Sequence[str]) -> None:
    """Reject a malformed override in one line, before Hydra prints a page."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from .config import compose_with_hydra, hydra_reason

    words = [w for w in hydra_args if not w.startswith("-") and "=" in w]
    parser = OverridesParser.create()
    plain = []
    for word in words:
        try:
            (override,) = parser.parse_overrides([word])
        except HydraException as exc:
            raise OverrideError(f"config override {word!r}: {hydra_reason(exc)}") from None
        if not override.is_sweep_override() and not override.is_hydra_override():
            plain.append(word)
    compose_with_hydra(plain)  # unknown keys and bad values, also in one line


def run_app(operation: str, hydra_args: Sequence[str]) -> int:
    """Run one operation through ``hydra.main``; returns the worst exit code
    over all jobs (a sweep checks every job before failing)."""
    import hydra
    from omegaconf import DictConfig, OmegaConf

    from .cli import emit
    from .registry import Registry

    op = OPERATIONS[operation]
    worst = EXIT_OK
    check_override_grammar(hydra_args)

    @hydra.main(config_path=str(conf_dir()), config_name="config", version_base=None)
    def app(cfg: DictConfig) -> None:
        nonlocal worst
        arguments = {
            key: OmegaConf.to_container(cfg[key]) if OmegaConf.is_config(cfg[key]) else cfg[key]
            for key in op.arguments
            if key in cfg
        }
        try:
            registry = Registry(cfg, defer_snapshot_refresh=True)
            result = op.call(registry, arguments)
        except RegistryError as exc:
            print(f"imageworks-loader {operation}: error: {exc}", file=sys.stderr)
            worst = max(worst, exc.exit_code)
            return
        worst = max(worst, emit(operation, result))
        registry.flush_snapshot()

    saved = sys.argv
    sys.argv = [f"imageworks-loader-{operation}", *hydra_args]
    try:
        app()
    finally:
        sys.argv = saved
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in OPERATIONS:
        names = ", ".join(OPERATIONS)
        print(
            f"usage: python -m loader.apps OPERATION [overrides]; one of: {names}", file=sys.stderr
        )
        return EXIT_USAGE
    try:
        return run_app(args[0], args[1:])
    except RegistryError as exc:
        print(f"imageworks-loader {args[0]}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
