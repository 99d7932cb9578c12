"""Compatibility path: ``loader.hashing`` is ``loader.integrity.hashing``."""

import sys

import loader.integrity.hashing as _module

sys.modules[__name__] = _module
