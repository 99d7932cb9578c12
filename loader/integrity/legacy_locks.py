"""Locks the ImageWorks loader made: its *legacy subset* hash.

A lock made by the ImageWorks loader on a model folder may hold the sha256
over the sorted hex digests of the few config and tokenizer files at the
folder's root. ``verify`` recognises it: when the subset still matches, the
lock holds with a warning that the weights are not covered (re-pin with
``lock --set-expected``).
"""

from __future__ import annotations

import hashlib

from loader.errors import RegistryError
from loader.integrity.artifacts import ArtifactSet, resolve_artifact_set
from loader.integrity.entry_hashing import hash_artifacts
from loader.registry.core import Registry

__all__ = [
    "LEGACY_SUBSET_FILES",
    "legacy_subset_sha256",
    "legacy_warning",
    "with_root_subset",
]

# The files the ImageWorks loader's folder locks covered, at the folder's root.
LEGACY_SUBSET_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "mm_projector.bin",
)


def legacy_subset_sha256(files: list[dict[str, str]]) -> str:
    """The ImageWorks folder-subset hash: sha256 of the concatenated sorted hex
    digests of those ``LEGACY_SUBSET_FILES`` present, or ``""`` when none is."""
    digests = sorted(f["sha256"] for f in files if f["path"] in LEGACY_SUBSET_FILES)
    if not digests:
        return ""
    return hashlib.sha256("".join(digests).encode("ascii")).hexdigest()


def legacy_warning(name: str) -> str:
    return (
        f"model {name!r}: its lock is an ImageWorks subset lock (config and tokenizer "
        "files only); the subset matches, but the weights are not covered. Re-pin all "
        f"files with: imageworks-loader lock '{name}' --set-expected"
    )


def with_root_subset(
    artifact_set: ArtifactSet, files: list[dict[str, str]], registry: Registry
) -> list[dict[str, str]]:
    """``files`` plus the legacy subset files at the root that a download
    list leaves out: ImageWorks hashed those present, listed or not."""
    listed = {f["path"] for f in files}
    extra = [n for n in LEGACY_SUBSET_FILES if n not in listed]
    extra = [n for n in extra if (artifact_set.root / n).is_file()]
    if not extra:
        return files
    try:
        subset = resolve_artifact_set(
            name=artifact_set.name,
            model_path=None,
            download_path=str(artifact_set.root),
            download_files=extra,
            ollama_models_dir=artifact_set.root,
        )
        return files + hash_artifacts(registry, subset, cache=None, progress=False)
    except RegistryError:
        return files  # unreadable, or a link leaving the root: not part of the subset
