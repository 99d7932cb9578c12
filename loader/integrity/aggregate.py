"""The aggregate hash that version locks compare, and what changed between two file lists."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

__all__ = ["aggregate_sha256", "changed_files"]


def aggregate_sha256(files: Iterable[Mapping[str, str]]) -> str:
    """The aggregate hash every existing version lock was made with.

    ``sha256("\\n".join(sorted(f"{sha256}  {path}")))``: two spaces, lines
    sorted, joined by a newline, no trailing newline. Do not change it.
    """
    lines = sorted(f"{f['sha256']}  {f['path']}" for f in files)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def changed_files(old: Iterable[Mapping[str, str]], new: Iterable[Mapping[str, str]]) -> list[str]:
    """Paths added, removed, or whose sha256 differs between two file lists."""
    before = {f["path"]: f["sha256"] for f in old}
    after = {f["path"]: f["sha256"] for f in new}
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
