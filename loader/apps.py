"""Compatibility path: ``loader.apps`` is ``loader.frontdoors.apps``.

``python -m loader.apps`` keeps working through this module.
"""

import sys

import loader.frontdoors.apps as _module

if __name__ == "__main__":
    raise SystemExit(_module.main())
sys.modules[__name__] = _module
