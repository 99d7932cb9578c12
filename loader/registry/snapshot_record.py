"""Which names the snapshot held when this loader wrote it.

The snapshot may hold entries that neither layer has. Two causes look alike:
someone added the entry to ``model_registry.json`` by hand (keep it, and let
``migrate`` adopt it), or it was in the layers when the snapshot was written
and has since been removed from them (drop it). Every snapshot this loader
writes comes from the layers, so it records, beside the snapshot, the names
it wrote and the bytes' sha256: ``.model_registry.json.names.json``. A name
in the record was in the layers; a snapshot whose bytes are still the
recorded ones has no hand-added entry at all. The record sits in the registry
folder (not the user's cache) so that every user and host sharing the folder
tells the two apart the same way.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from loader import logs
from loader.fileio import atomic_write_bytes, remove_dead_temps

if TYPE_CHECKING:
    from loader.registry.compose import Sources

_FORMAT = 1


def record_path(snapshot: Path) -> Path:
    return snapshot.with_name(f".{snapshot.name}.names.json")


# A named tuple, not a dataclass: `list` imports this, and importing
# dataclasses (with inspect) costs it ~8 ms on Python 3.11.
class SnapshotRecord(NamedTuple):
    """What the last snapshot this loader wrote held."""

    sha256: str
    names: frozenset[str]

    def matches(self, data: bytes) -> bool:
        """True when ``data`` (the snapshot now) is exactly what was written."""
        import hashlib  # only when a snapshot-only name needs telling apart

        return hashlib.sha256(data).hexdigest() == self.sha256


def read_record(snapshot: Path) -> SnapshotRecord | None:
    """The record, or None when there is none (or it is unreadable: then
    every snapshot-only name counts as hand-added, as before records)."""
    try:
        data = json.loads(record_path(snapshot).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    names, sha = data.get("names"), data.get("sha256")
    if not isinstance(sha, str) or not isinstance(names, list):
        return None
    return SnapshotRecord(sha, frozenset(n for n in names if isinstance(n, str)))


def snapshot_sha256(snapshot: Path) -> str | None:
    """The snapshot file's sha256, read in pieces (a 10,000-entry snapshot is
    30 MB), or None when it cannot be read."""
    import hashlib

    try:
        with open(snapshot, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


def write_record(snapshot: Path, sha: str, names: list[str]) -> None:
    """Record ``names`` as the snapshot's, whose bytes have sha256 ``sha``.
    Best effort: without a record, removed entries are only taken for
    hand-added ones."""
    current = read_record(snapshot)
    if current is not None and current.sha256 == sha and current.names == frozenset(names):
        remove_dead_temps(record_path(snapshot))  # a writer killed mid-write
        return
    doc = {"format": _FORMAT, "snapshot": snapshot.name, "sha256": sha, "names": sorted(names)}
    with contextlib.suppress(OSError):
        atomic_write_bytes(record_path(snapshot), json.dumps(doc, indent=1).encode("utf-8"))


def hand_added(snapshot_names: list[str], data: bytes, record: SnapshotRecord | None) -> list[str]:
    """Of the snapshot's names that no layer has, those added by hand: not in
    the layers when the snapshot was written (every name, without a record)."""
    if record is None:
        return list(snapshot_names)
    if record.matches(data):
        return []  # the file is what this loader wrote: nothing was added by hand
    return [name for name in snapshot_names if name not in record.names]


def snapshot_only_names(snapshot: Path, sources: Sources, removed: Iterable[str] = ()) -> list[str]:
    """Names in the snapshot that neither layer has and that were added to it
    by hand, with a warning naming them. Names that were in the layers when
    the snapshot was written, or that this process removed, are not."""
    try:
        raw = snapshot.read_bytes()
        data = json.loads(raw)
        names = [e["name"] for e in data if isinstance(e, dict) and isinstance(e.get("name"), str)]
    except (OSError, ValueError, TypeError):
        return []  # no snapshot, or one that is no registry: nothing to keep
    layered = {e["name"] for e in sources.curated.entries}
    layered.update(e["name"] for e in sources.discovered.entries)
    layered.update(removed)
    only = [name for name in names if name not in layered]
    if only:
        only = hand_added(only, raw, read_record(snapshot))
    if only:
        logs.warning(
            __name__,
            f"{snapshot}: entries only in the merged snapshot (hand-edited): "
            f"{', '.join(repr(n) for n in only)}; the snapshot is not rewritten, so they "
            "are kept; adopt them into the discovered layer with: imageworks-loader migrate",
        )
    return only
