"""Compatibility path: ``loader.schema`` is ``loader.registry.schema`` (the same module object)."""

import sys

import loader.registry.schema as _module

sys.modules[__name__] = _module
