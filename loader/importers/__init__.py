"""Importers: the producers of the discovered layer.

* ``import_ollama`` reads a running Ollama (``/api/tags``, ``/api/show``);
* ``import_dirs`` records model folders you name;
* ``rediscover`` records every model folder under ``paths.models``.

Each compares what it found with the composed registry (``plan``), reports
added / updated / missing entries field by field, and writes only the
discovered layer through ``Registry.save()``, or nothing on a dry run.
"""

from __future__ import annotations

from loader.importers.folders import import_dirs, rediscover
from loader.importers.ollama import import_ollama

__all__ = ["import_dirs", "import_ollama", "rediscover"]
