"""Hashing one registry entry's files with the registry's settings.

Which files (``artifact_set_for``), through which stat cache
(``hash_cache_for``), with the configured workers and chunk size
(``hash_artifacts``); ``hash_model`` warms the cache without touching the
entry or its lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loader.integrity.aggregate import aggregate_sha256
from loader.integrity.artifacts import ArtifactSet, resolve_artifact_set
from loader.integrity.hash_cache import HashCache
from loader.integrity.hashing import HashStats, hash_files
from loader.registry.core import Registry, default_registry
from loader.registry.schema import RegistryEntry

__all__ = ["artifact_set_for", "hash_artifacts", "hash_cache_for", "hash_entry", "hash_model"]


def artifact_set_for(entry: RegistryEntry, registry: Registry) -> ArtifactSet:
    """Which files ``entry``'s hashes cover (see ``hashing.resolve_artifact_set``)."""
    return resolve_artifact_set(
        name=entry.name,
        model_path=entry.backend_config.model_path,
        download_path=entry.download_path,
        download_files=list(entry.download_files),
        ollama_models_dir=registry.cfg.paths.ollama_models or Path(),
    )


def hash_cache_for(registry: Registry) -> HashCache:
    """The stat cache beside the registry's layer files."""
    files = registry.files or registry.layer_files()
    return HashCache.load(files.folder / registry.cfg.hashing.cache_file)


def hash_artifacts(
    registry: Registry,
    artifact_set: ArtifactSet,
    *,
    cache: HashCache | None,
    rehash: bool = False,
    progress: bool | None = None,
    stats: HashStats | None = None,
) -> list[dict[str, str]]:
    """``hash_files`` with the registry's hashing settings (workers, chunk size)."""
    if progress is None and registry.cfg.profile.progress is False:
        progress = False  # profile=ci: no progress bars, even on a terminal
    return hash_files(
        artifact_set,
        cache=cache,
        workers=registry.cfg.hashing.workers,
        chunk_bytes=registry.cfg.hashing.chunk_bytes,
        rehash=rehash,
        progress=progress,
        stats=stats,
    )


def hash_entry(
    entry: RegistryEntry,
    registry: Registry,
    *,
    rehash: bool,
    progress: bool | None,
    cache: HashCache | None,
) -> tuple[ArtifactSet, list[dict[str, str]], HashStats]:
    artifact_set = artifact_set_for(entry, registry)
    if cache is None:
        cache = registry.shared_hash_cache  # a run's one cache, saved by that run
    own_cache = cache is None
    cache = cache if cache is not None else hash_cache_for(registry)
    stats = HashStats()
    try:
        files = hash_artifacts(
            registry, artifact_set, cache=cache, rehash=rehash, progress=progress, stats=stats
        )
    finally:
        if own_cache:
            cache.save()  # digests computed before a failure are still right
    return artifact_set, files, stats


def hash_model(
    entry: RegistryEntry, *, registry: Registry | None = None, rehash: bool = False
) -> dict[str, Any]:
    """Hash ``entry``'s files into the stat cache, leaving the entry and its
    lock alone (``verify_model`` then reads no byte again)."""
    registry = registry or default_registry()
    _, files, stats = hash_entry(entry, registry, rehash=rehash, progress=None, cache=None)
    return {
        "name": entry.name,
        "aggregate_sha256": aggregate_sha256(files),
        "files": len(files),
        "files_read": stats.files_read,
        "bytes_read": stats.bytes_read,
        "cache_hits": stats.cache_hits,
    }
