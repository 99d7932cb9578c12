"""doit's file-change check, through the project's stat cache.

doit's default checker computes an MD5 of every file dependency: a second full
read of multi-GB weights that ``verify`` has just hashed. This one keeps what
the hash cache keys on, ``(size, mtime_ns, ctime_ns, inode)``, plus the sha256
that the cache holds for that stat, and reads no byte of any file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from doit.dependency import FileChangedChecker

from loader.fileio import Fingerprint
from loader.integrity.hashing import HashCache


def _stat_state(st: os.stat_result) -> list[int]:
    return list(Fingerprint.of(st))


class StatCacheChecker(FileChangedChecker):
    """A file changed when its stat did, unless the hash cache already knows
    the new stat has the old content (e.g. ``verify`` ran after a ``touch``)."""

    cache_path: Path | None = None  # set by ``checker_for``

    def __init__(self) -> None:
        self._cache: HashCache | None = None
        self._cache_stamp: Any = None

    def _digest(self, path: str, st: os.stat_result) -> str | None:
        if self.cache_path is None:
            return None
        try:
            stamp = Fingerprint.of(os.stat(self.cache_path))
        except OSError:
            return None
        if self._cache is None or stamp != self._cache_stamp:  # hash tasks add to it
            self._cache, self._cache_stamp = HashCache.load(self.cache_path), stamp
        return self._cache.lookup(os.path.realpath(path), st)

    def check_modified(self, file_path: str, file_stat: os.stat_result, state: Any) -> bool:
        if not isinstance(state, list) or len(state) != 5:
            return True
        if state[:4] == _stat_state(file_stat):
            return False
        digest = self._digest(file_path, file_stat)
        return digest is None or digest != state[4]

    def get_state(self, dep: str, current_state: Any) -> list[Any] | None:
        st = os.stat(dep)
        if isinstance(current_state, list) and current_state[:4] == _stat_state(st):
            return None  # unchanged: keep the saved state
        return [*_stat_state(st), self._digest(dep, st)]


def checker_for(cache_path: Path) -> type[StatCacheChecker]:
    """The checker class doit instantiates, bound to one registry's hash cache."""
    return type("StatCacheChecker", (StatCacheChecker,), {"cache_path": cache_path})
