"""doit task builders; ``dodo.py`` only lists them.

Each task calls the same operation the CLI does. doit's own file tracking
(``file_dep``/``targets``) makes a task rerun only when its inputs changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .config import load_config
from .registry import Registry


def _registry(overrides: Sequence[str]) -> Registry:
    return Registry(load_config(list(overrides)))


def snapshot_task(overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Regenerate model_registry.json when a layer file changed."""
    registry = _registry(overrides)
    files = registry.layer_files()

    def regenerate() -> bool:
        from .operations import snapshot_op

        print(json.dumps(snapshot_op(_registry(overrides))))
        return True

    return {
        "actions": [regenerate],
        "file_dep": [str(p) for p in (files.curated, files.discovered) if p.exists()],
        "targets": [str(files.snapshot)],
        "verbosity": 2,
        "doc": "Regenerate the merged snapshot when a layer file changed.",
    }
