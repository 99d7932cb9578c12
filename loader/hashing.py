"""Compatibility path: ``loader.hashing`` (docs/api.md).

The hashing engine lives in :mod:`loader.integrity.hashing`; ``verify_model``
and ``VerifyResult`` live with the version locks
(:mod:`loader.integrity.version_locks`). The ImageWorks API names them all
here, so this facade re-exports both, and the engine no longer imports the
lock module back (the ``hashing`` <-> ``locks`` circle is gone).
"""

from loader.integrity.hashing import *  # noqa: F403
from loader.integrity.hashing import __all__ as _engine_names
from loader.integrity.version_locks import VerifyResult, verify_model

__all__ = [*_engine_names, "VerifyResult", "verify_model"]
