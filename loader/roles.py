"""Compatibility path: ``loader.roles`` is ``loader.registry.roles`` (the same module object)."""

import sys

import loader.registry.roles as _module

sys.modules[__name__] = _module
