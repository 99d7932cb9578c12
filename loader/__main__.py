"""``python -m loader`` is the ``imageworks-loader`` CLI."""

from .cli import main

raise SystemExit(main())
