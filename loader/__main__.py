"""``python -m loader`` is the ``imageworks-loader`` CLI."""

from loader.frontdoors.cli import console_main

console_main()
