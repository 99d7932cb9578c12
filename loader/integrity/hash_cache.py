"""The stat cache: a file whose fingerprint is unchanged is not read again.

Records map a file's absolute resolved path to its ``Fingerprint`` (size,
mtime, ctime, inode) and sha256. Saving merges with what other processes
wrote meanwhile, under an inter-process lock, and replaces the file
atomically.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from loader import logs
from loader.file_locks import LockTimeout, file_lock
from loader.fileio import Fingerprint, atomic_write_bytes, read_regular_file
from loader.integrity.artifacts import HEX64

__all__ = ["CACHE_LOCK_WAIT_S", "HashCache", "read_cache_file"]


def _warn(message: str) -> None:
    logs.warning(__name__, message)


_CACHE_VERSION = 1
# A save holds the cache lock for milliseconds, so concurrent verifies still
# merge their records; a holder that keeps it longer costs a verify at most
# this long, then one warning (the records are simply not remembered).
CACHE_LOCK_WAIT_S = 1.0
_MAX_CACHE_BYTES = 1 << 30
_STAT_KEYS = Fingerprint._fields  # a record's fingerprint, one key per field


def read_cache_file(path: Path, *, quiet: bool = False) -> dict[str, dict[str, Any]]:
    """Entries of a cache file; missing -> empty, damaged -> warning and empty."""
    warn = (lambda _msg: None) if quiet else _warn
    try:
        raw = read_regular_file(path, _MAX_CACHE_BYTES)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        warn(f"hash cache {path} unreadable ({exc.strerror or exc}); ignoring it")
        return {}
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("version") != _CACHE_VERSION:
            raise ValueError("unexpected layout")
        entries = doc["entries"]
        if not isinstance(entries, dict):
            raise ValueError("unexpected layout")
    except (ValueError, KeyError, UnicodeDecodeError):
        warn(f"hash cache {path} is damaged; ignoring it (files will be re-read)")
        return {}
    # Keep only well-formed records, so one bad line does not poison lookups.
    return {
        key: rec
        for key, rec in entries.items()
        if isinstance(rec, dict)
        and all(type(rec.get(k)) is int for k in _STAT_KEYS)
        and isinstance(rec.get("sha256"), str)
        and HEX64.fullmatch(rec["sha256"])
    }


class HashCache:
    """Per-file ``(size, mtime_ns, ctime_ns, inode) -> sha256`` memory.

    Keys are absolute resolved paths. ``save`` merges with whatever other
    processes wrote meanwhile, under an inter-process lock, and replaces the
    file atomically.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, dict[str, Any]] = {}
        self._fresh: dict[str, dict[str, Any]] = {}
        self._mutex = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> HashCache:
        cache = cls(path)
        cache._entries = read_cache_file(Path(path))
        return cache

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, abs_path: Path | str, st: os.stat_result) -> str | None:
        rec = self._entries.get(os.path.abspath(abs_path))
        if rec is None or Fingerprint.of(st) != (
            rec["size"],
            rec["mtime_ns"],
            rec["ctime_ns"],
            rec["ino"],
        ):
            return None
        return rec["sha256"]

    def store(self, abs_path: Path | str, st: os.stat_result, sha256: str) -> None:
        rec = {**Fingerprint.of(st)._asdict(), "sha256": sha256}
        key = os.path.abspath(abs_path)
        with self._mutex:  # hash_files stores from worker threads
            self._entries[key] = rec
            self._fresh[key] = rec

    def save(self, *, timeout: float = CACHE_LOCK_WAIT_S) -> None:
        """Write new records out. A cache is an optimisation: failures warn, never
        raise, and a busy cache lock is waited for only briefly."""
        if self.path is None or not self._fresh:
            return
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with file_lock(f"{path}.lock", timeout):
                merged = read_cache_file(path, quiet=True)  # load() already warned
                with self._mutex:
                    merged.update(self._fresh)
                _atomic_write_json(path, {"version": _CACHE_VERSION, "entries": merged})
        except LockTimeout:
            _warn(f"hash cache {path} is busy (locked by another process); not saved this time")
            return
        except OSError as exc:
            _warn(f"hash cache {path} could not be saved ({exc})")
            return
        with self._mutex:
            self._entries = merged
            self._fresh = {}


def _atomic_write_json(path: Path, doc: Any) -> None:
    data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")
    atomic_write_bytes(path, data)
