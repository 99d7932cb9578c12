"""Compatibility path: ``loader.service`` is ``loader.registry.service``."""

import sys

import loader.registry.service as _module

sys.modules[__name__] = _module
