"""The hashing engine: the sha256 of every file of a model, in parallel.

``hash_files`` streams each file through one reused buffer per thread,
opening it beneath the model's root without following links (``loader.fileio``),
skips files whose fingerprint the stat cache knows (``hash_cache``), and
refuses a file that changed while it was read. Its neighbours:

* ``artifacts``: which files a model is made of (``resolve_artifact_set``);
* ``hash_cache``: the stat cache (``HashCache``);
* ``progress``: the progress line on stderr;
* ``aggregate``: the one hash version locks compare (``aggregate_sha256``).

This module re-exports their public names, the documented ``loader.hashing``
API.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from loader import fileio
from loader.errors import ArtifactError, BlobDigestMismatch, VersionLockViolation
from loader.integrity.aggregate import aggregate_sha256, changed_files
from loader.integrity.artifacts import (
    ArtifactSet,
    escaping_link_error,
    is_inside,
    real_path,
    resolve_artifact_set,
)
from loader.integrity.hash_cache import HashCache
from loader.integrity.progress import Progress

__all__ = [
    "ArtifactSet",
    "HashCache",
    "HashStats",
    "VersionLockViolation",
    "aggregate_sha256",
    "changed_files",
    "hash_files",
    "resolve_artifact_set",
]

_Progress = Progress  # its name when it lived here (tests patch it)

DEFAULT_CHUNK_BYTES = 512 * 1024  # stays in cache from read to hash; see conf/hashing


@dataclass
class HashStats:
    """What one ``hash_files`` call did; pass one in to find out."""

    files_total: int = 0
    files_read: int = 0
    cache_hits: int = 0
    bytes_total: int = 0
    bytes_read: int = 0


class _Cancelled(Exception):
    pass


_local = threading.local()


def _buffer(size: int) -> memoryview:
    # One buffer per thread, reused for every file it hashes: memory stays flat.
    buf = getattr(_local, "buf", None)
    if buf is None or len(buf) != size:
        buf = memoryview(bytearray(size))
        _local.buf = buf
    return buf


def _hash_path(
    opened: tuple[int, os.stat_result],
    chunk: int,
    progress: Progress,
    cancel: threading.Event,
) -> tuple[str, os.stat_result, os.stat_result]:
    """Stream one opened file through sha256; returns the digest and the
    descriptor's stat before and after, which the caller compares."""
    fd, before = opened
    with open(fd, "rb", buffering=0, closefd=True) as fh:
        if hasattr(os, "posix_fadvise"):
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        h = hashlib.sha256()
        buf = _buffer(chunk)
        while True:
            if cancel.is_set():
                raise _Cancelled
            n = fh.readinto(buf)
            if not n:
                break
            h.update(buf[:n])
            progress.add(n)
        after = os.fstat(fd)
    return h.hexdigest(), before, after


def _open_checked(
    aset: ArtifactSet, root: fileio.Root | None, real: str, rel: str
) -> tuple[int, os.stat_result]:
    """Open a file for hashing without following links or blocking, refusing
    anything that is not a regular file beneath the root."""
    shown = aset.root / rel
    who = f"model '{aset.name}'"
    try:
        if root is None:  # no openat here: the checked path, final link refused
            return fileio.open_checked_path(real)
        return root.open_file(real)
    except fileio.NotRegularFile:
        raise ArtifactError(
            f"{who}: {shown} is not a regular file (swapped while verifying?); refusing to read it"
        ) from None
    except fileio.LinkOnPath:
        raise ArtifactError(
            f"{who}: {shown} changed while verifying: a folder or file on its path is now a "
            "symlink; refusing to follow it"
        ) from None
    except OSError as exc:
        raise ArtifactError(f"{who}: cannot read {shown}: {exc.strerror or exc}") from None


def _mismatch(aset: ArtifactSet, rel: str, expected: str, got: str) -> BlobDigestMismatch:
    who = f"model '{aset.name}': " if aset.name else ""
    return BlobDigestMismatch(
        f"{who}blob {aset.root / rel} does not match its digest: "
        f"expected sha256:{expected}, content hashes to sha256:{got}"
    )


def hash_files(
    artifact_set: ArtifactSet,
    *,
    cache: HashCache | None = None,
    workers: int = 0,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    rehash: bool = False,
    progress: bool | None = None,
    stats: HashStats | None = None,
) -> list[dict[str, str]]:
    """sha256 of every file in the set, as ``[{"path", "sha256"}]`` sorted by path.

    Files whose stat matches ``cache`` are not re-read unless ``rehash``; fresh
    digests are stored into ``cache`` (the caller saves it). A file whose digest
    differs from ``artifact_set.expected_digests`` raises ``BlobDigestMismatch``.
    """
    aset = artifact_set
    root = Path(aset.root)
    root_real = real_path(aset.name, root)
    stats = stats if stats is not None else HashStats()
    chunk = max(64 * 1024, int(chunk_bytes))

    # Resolve and stat every file again: the tree may have changed since it was
    # resolved, and nothing outside the root may be read.
    digests: dict[str, str] = {}
    todo: dict[str, list[str]] = {}  # real path -> relative paths sharing it
    checked: dict[str, os.stat_result] = {}  # real path -> its stat when checked
    for rel in aset.files:
        real = real_path(aset.name, root / rel)
        if not is_inside(real, root_real):
            raise escaping_link_error(aset.name or "?", root, root_real, rel)
        try:
            st = os.stat(real)
        except OSError as exc:
            raise ArtifactError(
                f"model '{aset.name}': cannot read {root / rel}: {exc.strerror}"
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise ArtifactError(f"model '{aset.name}': {root / rel} is not a regular file")
        stats.files_total += 1
        stats.bytes_total += st.st_size
        hit = None if (cache is None or rehash) else cache.lookup(real, st)
        if hit is not None:
            digests[rel] = hit
            stats.cache_hits += 1
        else:
            todo.setdefault(real, []).append(rel)
            checked[real] = st

    if progress is None:
        progress = sys.stderr.isatty()
    meter = Progress(stats.files_total, stats.bytes_total, sys.stderr if progress else None)
    meter.files_done = stats.cache_hits  # cache hits count as done from the start
    meter.bytes_done = stats.bytes_total - sum(st.st_size for st in checked.values())

    for rel, got in digests.items():  # cache hits must match their blob name too
        expected = aset.expected_digests.get(rel)
        if expected is not None and expected != got:
            raise _mismatch(aset, rel, expected, got)

    if todo:
        # Files are opened from the root's descriptor, never by path (see loader.fileio.Root).
        opened_root = fileio.Root(root_real) if fileio.BENEATH_SUPPORTED else None
        try:
            _hash_todo(
                aset, opened_root, todo, checked, digests, cache, workers, chunk, meter, stats
            )
        finally:
            meter.finish()
            if opened_root is not None:
                opened_root.close()
    return [{"path": rel, "sha256": digests[rel]} for rel in sorted(digests)]


# Below this many bytes to read, a model is hashed in the calling thread.
SMALL_TOTAL_BYTES = 8 * 1024 * 1024


def _hash_todo(
    aset: ArtifactSet,
    root: fileio.Root | None,
    todo: dict[str, list[str]],
    checked: dict[str, os.stat_result],
    digests: dict[str, str],
    cache: HashCache | None,
    workers: int,
    chunk: int,
    meter: Progress,
    stats: HashStats,
) -> None:
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    cancel = threading.Event()
    tally = threading.Lock()

    def work(real: str) -> None:
        rels = todo[real]
        if cancel.is_set():
            return
        opened = _open_checked(aset, root, real, rels[0])
        try:
            sha, before, after = _hash_path(opened, chunk, meter, cancel)
        except _Cancelled:
            return
        except OSError as exc:
            raise ArtifactError(
                f"model '{aset.name}': cannot read {aset.root / rels[0]}: {exc.strerror or exc}"
            ) from None
        # Checked, opened and finished reading must all be the same unchanged
        # file: otherwise the digest is of no version that ever existed whole.
        if not (
            fileio.same_file_unchanged(checked[real], before)
            and fileio.same_file_unchanged(before, after)
            and after.st_nlink > 0
        ):
            what = "deleted" if after.st_nlink == 0 else "changed"
            raise ArtifactError(
                f"model '{aset.name}': {aset.root / rels[0]} {what} while it was hashed; "
                "nothing recorded for this model (run verify again once it is stable)"
            )
        if cache is not None:
            cache.store(real, after, sha)
        with tally:  # += on shared counters is not atomic across threads
            for rel in rels:
                digests[rel] = sha
            stats.files_read += 1
            stats.bytes_read += checked[real].st_size
        meter.add(files=len(rels))
        for rel in rels:
            expected = aset.expected_digests.get(rel)
            if expected is not None and expected != sha:
                raise _mismatch(aset, rel, expected, sha)

    # Largest first, so one big shard does not start last and run alone.
    order = sorted(todo, key=lambda r: (-checked[r].st_size, r))
    n = workers if workers > 0 else (os.cpu_count() or 1)
    n = max(1, min(n, 32, len(order)))
    if sum(checked[r].st_size for r in order) < SMALL_TOTAL_BYTES:
        n = 1  # starting threads costs more than reading a few small files
    if n == 1:
        for real in order:
            work(real)
        return
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="hash") as pool:
        futures = [pool.submit(work, real) for real in order]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            errors = [e for f in futures if f in done and (e := f.exception()) is not None]
            if errors:
                raise errors[0]
        except BaseException:
            # Stop the others at their next chunk instead of reading gigabytes for nothing.
            cancel.set()
            for f in futures:
                f.cancel()
            raise
