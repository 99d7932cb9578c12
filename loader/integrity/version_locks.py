"""Version locks: verify an entry's artifacts against the hash it was locked at.

``verify_model`` hashes an entry's files (``loader.hashing``), records the
result on the entry, enforces its lock and (unless ``save=False``) saves it,
as the ImageWorks loader's does; ``lock_model``/``unlock_model`` change the
lock only, and the caller saves.

Its neighbours: ``entry_hashing`` hashes an entry with the registry's
settings; ``legacy_locks`` recognises the ImageWorks loader's subset locks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loader import logs
from loader.errors import ArtifactNameError, RegistryError, VersionLockViolation
from loader.integrity.aggregate import aggregate_sha256, changed_files
from loader.integrity.entry_hashing import (  # noqa: F401 (re-exported: their old home)
    artifact_set_for,
    hash_artifacts,
    hash_cache_for,
    hash_entry,
    hash_model,
)
from loader.integrity.hash_cache import HashCache
from loader.integrity.legacy_locks import (  # noqa: F401 (re-exported: their old home)
    LEGACY_SUBSET_FILES,
    legacy_subset_sha256,
    legacy_warning,
    with_root_subset,
)
from loader.registry.core import Registry, default_registry
from loader.registry.hosts import host_name, record
from loader.registry.schema import ArtifactFile, RegistryEntry

__all__ = [
    "VerifyResult",
    "VersionLockViolation",
    "hash_model",
    "lock_model",
    "unlock_model",
    "verify_model",
]


@dataclass
class VerifyResult:
    """What one verify found."""

    name: str
    aggregate_sha256: str
    files: int
    last_verified: str | None
    locked: bool
    expected_aggregate_sha256: str | None
    status: str  # "ok" (lock holds), "legacy-lock" (its subset holds), "unlocked", "violated"
    changed_files: list[str]
    files_read: int
    cache_hits: int
    warning: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        if data["warning"] is None:
            del data["warning"]
        return data


def _now() -> str:
    return datetime.now(UTC).isoformat()


def verify_model(
    entry: RegistryEntry,
    enforce_lock: bool = True,
    save: bool = True,
    *,
    registry: Registry | None = None,
    rehash: bool = False,
    progress: bool | None = None,
    cache: HashCache | None = None,
) -> VerifyResult:
    """Hash ``entry``'s artifacts and check its version lock.

    On success the entry gets the fresh ``artifacts`` and
    ``version_lock.last_verified`` (a locked entry with no expected hash yet
    takes this aggregate), and ``save`` persists them with the registry's
    locked save (``registry`` must be the one ``entry`` came from: the default
    one unless given). When the lock is violated and ``enforce_lock`` is
    true, ``VersionLockViolation`` names both hashes and the changed files and
    the entry is left as it was, so the last good record survives.
    """
    registry = registry or default_registry()
    try:
        artifact_set, files, stats = hash_entry(
            entry, registry, rehash=rehash, progress=progress, cache=cache
        )
    except ArtifactNameError as exc:
        lock = entry.version_lock
        if enforce_lock and lock.locked and lock.expected_aggregate_sha256:
            # A locked model's files now include a name no lock can cover:
            # they have changed, and the aggregate cannot be trusted to say so.
            raise VersionLockViolation(
                f"{exc}; the model is locked, so its files have changed",
                name=entry.name,
                expected=lock.expected_aggregate_sha256,
            ) from None
        raise
    aggregate = aggregate_sha256(files)
    lock = entry.version_lock
    expected = lock.expected_aggregate_sha256
    previous = [f.model_dump() for f in entry.artifacts.files]
    # With no earlier file list there is nothing to compare against.
    changed = changed_files(previous, files) if previous else []
    legacy = bool(
        lock.locked
        and expected
        and expected != aggregate
        and artifact_set.kind == "files"
        and expected == legacy_subset_sha256(with_root_subset(artifact_set, files, registry))
    )
    violated = bool(lock.locked and expected and expected != aggregate and not legacy)
    host = host_name(registry.cfg)
    if violated and enforce_lock:
        # Recorded for this host, so list/metrics show the violation until a
        # later verify passes; the last good artifacts and the lock stay.
        record(
            entry,
            host,
            "verify",
            {
                "status": "violated",
                "at": _now(),
                "aggregate_sha256": aggregate,
                "expected_aggregate_sha256": expected,
                "changed_files": changed[:50],
            },
        )
        if save:
            _save_verdict(registry, entry.name)
        shown = ", ".join(changed[:10]) + (
            f" and {len(changed) - 10} more" if len(changed) > 10 else ""
        )
        raise VersionLockViolation(
            f"model {entry.name!r}: version lock violated: expected aggregate {expected}, "
            f"found {aggregate}; changed files: {shown or _no_change_note(previous)}",
            name=entry.name,
            expected=expected or "",
            found=aggregate,
            changed_files=changed,
        )
    entry.artifacts.files = [ArtifactFile(**f) for f in files]
    entry.artifacts.aggregate_sha256 = aggregate
    lock.last_verified = _now()
    if lock.locked and not expected:
        lock.expected_aggregate_sha256 = aggregate
    status = "violated" if violated else ("ok" if lock.locked else "unlocked")
    if legacy:
        status = "legacy-lock"
    record(
        entry,
        host,
        "verify",
        {"status": status, "at": lock.last_verified, "aggregate_sha256": aggregate},
    )
    if save:
        registry.save()
    return VerifyResult(
        name=entry.name,
        aggregate_sha256=aggregate,
        files=len(files),
        last_verified=lock.last_verified,
        locked=bool(lock.locked),
        expected_aggregate_sha256=lock.expected_aggregate_sha256,
        status=status,
        changed_files=changed,
        files_read=stats.files_read,
        cache_hits=stats.cache_hits,
        warning=legacy_warning(entry.name) if legacy else None,
    )


def _save_verdict(registry: Registry, name: str) -> None:
    """Save a violation's record; a registry that cannot be written must not
    hide the violation (exit 2) behind a write error (exit 1)."""

    from loader.errors import RegistryWriteError

    try:
        registry.save()
    except RegistryWriteError as exc:
        logs.warning(__name__, f"model {name!r}: the violation is not recorded: {exc}")


def _no_change_note(previous: list[dict[str, Any]]) -> str:
    if not previous:
        return "unknown (no earlier file list to compare with)"
    return "none since the last recorded file list (the expected hash predates it)"


def lock_model(
    entry: RegistryEntry, *, set_expected: bool = False, registry: Registry | None = None
) -> dict[str, Any]:
    """Lock an entry; with ``set_expected`` the files as they are now are
    hashed (through the stat cache, so unchanged files are not re-read) and
    their aggregate becomes the expected one. Missing files raise
    ``ArtifactError`` and pin nothing."""
    hashed: dict[str, int] = {}
    if set_expected:
        registry = registry or default_registry()
        result = verify_model(entry, enforce_lock=False, save=False, registry=registry)
        entry.version_lock.expected_aggregate_sha256 = result.aggregate_sha256
        # The files as they are now are the lock: this host's verdict is ok.
        record(
            entry,
            host_name(registry.cfg),
            "verify",
            {
                "status": "ok",
                "at": result.last_verified,
                "aggregate_sha256": result.aggregate_sha256,
            },
        )
        hashed = {"files_read": result.files_read, "cache_hits": result.cache_hits}
    entry.version_lock.locked = True
    return {**_lock_state(entry), **hashed}


def unlock_model(entry: RegistryEntry) -> dict[str, Any]:
    """Clear the lock flag only; the expected hash stays for a later re-lock."""
    entry.version_lock.locked = False
    return _lock_state(entry)


def _lock_state(entry: RegistryEntry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "locked": entry.version_lock.locked,
        "expected_aggregate_sha256": entry.version_lock.expected_aggregate_sha256,
        "aggregate_sha256": entry.artifacts.aggregate_sha256 or "",
    }


def verify_all(
    registry: Registry, names: list[str], *, rehash: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """Verify every named entry, one shared cache; returns per-entry results
    and the worst exit code. Checks all entries before reporting failure.
    It does not save: the caller saves once."""
    cache = hash_cache_for(registry)
    results: list[dict[str, Any]] = []
    worst = 0
    try:
        for name in names:
            entry = registry.get(name)
            try:
                result = verify_model(
                    entry, save=False, registry=registry, rehash=rehash, cache=cache
                )
                results.append(result.to_json())
            except VersionLockViolation as exc:
                results.append(
                    {
                        "name": name,
                        "status": "violated",
                        "expected_aggregate_sha256": exc.expected,
                        "aggregate_sha256": exc.found,
                        "changed_files": exc.changed_files,
                        "error": str(exc),
                        "exit_code": exc.exit_code,
                    }
                )
                worst = max(worst, exc.exit_code)
            except RegistryError as exc:
                results.append(
                    {"name": name, "status": "error", "error": str(exc), "exit_code": exc.exit_code}
                )
                worst = max(worst, exc.exit_code)
    finally:
        cache.save()
    return results, worst
