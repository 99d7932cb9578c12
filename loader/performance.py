"""Compatibility path: ``loader.performance`` is ``loader.probe.performance``."""

import sys

import loader.probe.performance as _module

sys.modules[__name__] = _module
