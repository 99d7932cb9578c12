"""Compatibility path: ``loader.cli`` is ``loader.frontdoors.cli`` (the same module object)."""

import sys

import loader.frontdoors.cli as _module

sys.modules[__name__] = _module
