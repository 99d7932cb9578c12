"""Which entry a model folder is, across hosts, and which recorded paths a
re-import replaces.

One registry serves hosts whose model roots differ, so a folder's identity is
its path below the model root: an entry recording another host's absolute
path (one that does not exist here) that ends in the same relative path is
the same model. A recorded path that leads nowhere on this host, or a relative
file path (an older ``import-dir`` run from some folder), is replaced by the
re-import's portable value.
"""

from __future__ import annotations

import os
from typing import Any

from loader.registry.schema import RegistryEntry

# The fields holding a local path: stored portably, repaired on a re-import.
PATH_FIELDS: tuple[tuple[str, ...], ...] = (
    ("backend_config", "model_path"),
    ("download_path",),
    ("chat_template", "path"),
)


def get_field(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a dotted ``path`` (as a tuple), or None."""
    node: Any = data
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def from_another_host(entry: RegistryEntry, rel: str | None) -> bool:
    """An entry recording this model's folder as another host saw it: an
    absolute path, not present here, ending in the same path below the model
    root (the model's identity across hosts)."""
    if not rel:
        return False
    for value in (entry.backend_config.model_path, entry.download_path):
        if not value or value.startswith("ollama:"):
            continue
        path = os.path.expanduser(value)
        if (
            os.path.isabs(path)
            and not os.path.exists(path)
            and path.rstrip(os.sep).endswith(os.sep + rel)
        ):
            return True
    return False


def needs_repair(field_path: tuple[str, ...], recorded: Any, fresh: Any) -> bool:
    """A recorded path that a re-import replaces: one leading nowhere on this
    host, or a relative file path (it depended on the folder the import ran
    in). A relative ``model_path`` stays: vLLM reads it as a Hugging Face id."""
    if not isinstance(recorded, str) or not recorded or not isinstance(fresh, str):
        return False
    if recorded.startswith("ollama:"):
        return False
    path = os.path.expanduser(recorded)
    if not os.path.isabs(path):
        return field_path != ("backend_config", "model_path")
    return not os.path.exists(path)


def set_field(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set the value at ``path`` in place, making the dicts on the way."""
    for part in path[:-1]:
        data = data.setdefault(part, {})
    data[path[-1]] = value
