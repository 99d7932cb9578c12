"""Compatibility path: ``loader.locks`` is ``loader.integrity.version_locks``."""

import sys

import loader.integrity.version_locks as _module

sys.modules[__name__] = _module
