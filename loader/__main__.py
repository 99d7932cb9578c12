"""``python -m loader`` is the ``imageworks-loader`` CLI."""

from .cli import console_main

console_main()
