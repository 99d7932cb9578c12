"""One download, one entry: a model folder recorded under two names is refused.

A download's identity is its resolved local path (``~`` expanded, links
followed). Ollama paths (``ollama:/tag``) are Ollama's own names, not folders;
two entries for one tag are reported by ``audit`` instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from loader.errors import RegistryWriteError

if TYPE_CHECKING:  # the read path (a confirmed snapshot) never imports pydantic
    from loader.registry.schema import RegistryEntry


def resolved_download(entry: RegistryEntry) -> str | None:
    path = entry.download_path
    if not path or path.startswith("ollama:"):
        return None
    expanded = os.path.expanduser(path)
    return os.path.realpath(expanded) if os.path.isabs(expanded) else None


def refuse_duplicate_downloads(
    entries: Mapping[str, RegistryEntry], recorded: Iterable[str]
) -> None:
    """``RegistryWriteError`` naming both entries when one of ``recorded``
    (entries whose download this write records) shares its download with another."""
    recorded = [n for n in recorded if n in entries]
    if not recorded:
        return
    owners: dict[str, str] = {}
    for name in sorted(entries):
        path = resolved_download(entries[name])
        if path is not None and name not in recorded:
            owners.setdefault(path, name)
    for name in recorded:
        path = resolved_download(entries[name])
        if path is None:
            continue
        other = owners.get(path)
        if other is not None:
            raise RegistryWriteError(
                f"entry {name!r}: download_path: {path} is already recorded as {other!r}; "
                "one download is one entry (update that entry, or remove one of them)"
            )
        owners[path] = name
