"""Every operation as a Hydra app, so Hydra's own features work.

    python -m loader.apps OPERATION [hydra overrides and flags]
    python -m loader.apps list role=caption --cfg job
    python -m loader.apps explain -m 'name=a,b'

Operation arguments are config keys (``name``, ``role``, ``require``). The
running itself is ``loader.frontdoors.hydra_app``, which the CLI also uses
when it sees a Hydra flag (``--cfg``, ``-m`` ...).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from loader.errors import EXIT_OK, EXIT_USAGE, as_registry_error
from loader.frontdoors.hydra_app import run_app
from loader.frontdoors.output import PROG, print_error
from loader.logs import front_door_logging
from loader.operations.table import OPERATIONS


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    names = ", ".join(OPERATIONS)
    usage = f"usage: python -m loader.apps OPERATION [overrides] [Hydra flags]; one of: {names}"
    if args and args[0] in ("-h", "--help"):
        print(usage)
        return EXIT_OK
    if not args or args[0] not in OPERATIONS:
        print(usage if not args else f"{usage} (not {args[0]!r})", file=sys.stderr)
        return EXIT_USAGE
    try:
        with front_door_logging(PROG):
            return run_app(args[0], args[1:])
    except Exception as exc:  # on purpose (its own exit code) or a bug (exit 3)
        return print_error(f"{PROG} {args[0]}", as_registry_error(exc))


if __name__ == "__main__":
    raise SystemExit(main())
