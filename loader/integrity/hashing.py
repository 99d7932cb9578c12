"""Artifact hashing engine: which files a model is made of, and their sha256.

Three parts:

* ``resolve_artifact_set`` turns an entry's paths into a checked list of files
  (a plain folder, tracked download files, or an Ollama manifest's blobs),
  refusing anything that would lead outside the model's root;
* ``hash_files`` hashes them in parallel, streaming through a fixed buffer and
  skipping files whose stat is unchanged since the last run (``HashCache``);
* ``aggregate_sha256`` folds the per-file digests into the one hash that
  version locks compare.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from loader.errors import (
    ArtifactError,
    ArtifactNameError,
    BlobDigestMismatch,
    VersionLockViolation,
)
from loader.integrity import beneath
from loader.integrity.file_locks import LockTimeout, file_lock
from loader.registry.layers import atomic_write_bytes, read_regular_file

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


DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024
OLLAMA_PREFIX = "ollama:"
OLLAMA_DEFAULT_REGISTRY = "registry.ollama.ai"
OLLAMA_DEFAULT_NAMESPACE = "library"
OLLAMA_DEFAULT_TAG = "latest"

_HEX64 = re.compile(r"[0-9a-f]{64}")


# --- the aggregate ----------------------------------------------------------


def aggregate_sha256(files: Iterable[Mapping[str, str]]) -> str:
    """The aggregate hash every existing version lock was made with.

    ``sha256("\\n".join(sorted(f"{sha256}  {path}")))``: two spaces, lines
    sorted, joined by a newline, no trailing newline. Do not change it.
    """
    lines = sorted(f"{f['sha256']}  {f['path']}" for f in files)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


# C0 controls and DEL. A newline in a name could pass one line of the aggregate
# off as two; none of these belong in a model file's name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_artifact_name(name: str, root: Path | str, rel: str) -> None:
    """Refuse a file name holding a control character (``ArtifactNameError``),
    in one line that shows the name escaped."""
    found = _CONTROL.search(rel)
    if found is None:
        return
    shown = rel if len(rel) <= 120 else rel[:117] + "..."
    raise ArtifactNameError(
        f"model '{name}': file {shown!r} in {root} holds a control character "
        f"(U+{ord(found.group()):04X}); refusing it: such a name could forge lines of "
        "the aggregate hash (rename the file)"
    )


def changed_files(old: Iterable[Mapping[str, str]], new: Iterable[Mapping[str, str]]) -> list[str]:
    """Paths added, removed, or whose sha256 differs between two file lists."""
    before = {f["path"]: f["sha256"] for f in old}
    after = {f["path"]: f["sha256"] for f in new}
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


# --- which files ------------------------------------------------------------


@dataclass
class ArtifactSet:
    """The files that make up one model, relative to ``root``."""

    root: Path
    files: list[str]
    kind: str = "files"  # "files" or "ollama"
    expected_digests: dict[str, str] = field(default_factory=dict)
    name: str = ""  # the entry's name, for messages
    manifest: Path | None = None  # an Ollama model's manifest (a doit file dep too)


def resolve_artifact_set(
    *,
    name: str,
    model_path: str | None,
    download_path: str | None,
    download_files: list[str] | None,
    ollama_models_dir: Path,
) -> ArtifactSet:
    """Work out which files an entry's hashes cover.

    Tracked downloads win, then ``ollama:`` references, then every regular file
    under ``model_path``. Raises ``ArtifactError`` when nothing can be found or
    a path would leave the root; never returns an empty set.
    """
    for what, value in (
        ("model_path", model_path),
        ("download_path", download_path),
        *(("download file", item) for item in download_files or ()),
    ):
        if isinstance(value, str) and "\0" in value:
            raise ArtifactError(f"model '{name}': {what} {value!r} holds a NUL byte")
    if download_files and download_path:
        return _resolve_download_files(name, Path(download_path).expanduser(), download_files)
    if model_path and model_path.startswith(OLLAMA_PREFIX):
        return _resolve_ollama(name, model_path, Path(ollama_models_dir).expanduser())
    if not model_path:
        raise ArtifactError(f"model '{name}': no model_path or download files to hash")
    return _resolve_folder(name, Path(model_path).expanduser())


def _inside(path: str, root_real: str) -> bool:
    return path == root_real or os.path.commonpath([path, root_real]) == root_real


def _real(name: str, path: Path | str) -> str:
    # realpath itself races: a link removed between its lstat and readlink raises.
    try:
        return os.path.realpath(path)
    except OSError as exc:
        raise ArtifactError(
            f"model '{name}': {path} changed while it was being resolved ({exc.strerror}); "
            "run verify again once it is stable"
        ) from None


def _require_dir(name: str, root: Path, what: str) -> str:
    if not root.is_dir():
        problem = "is not a folder" if root.exists() else "does not exist"
        raise ArtifactError(f"model '{name}': {what} {root} {problem}")
    return _real(name, root)


def _escaping_link_error(name: str, root: Path, root_real: str, rel: str) -> ArtifactError:
    # Name the first component that is a link leading outside, not just the file.
    parts = PurePosixPath(rel).parts
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        candidate = root / prefix
        if candidate.is_symlink():
            target = _real(name, candidate)
            if not _inside(target, root_real):
                return ArtifactError(
                    f"model '{name}': symlink {candidate} points outside {root} "
                    f"(to {target}); refusing to follow it"
                )
    target = _real(name, root / rel)
    return ArtifactError(
        f"model '{name}': {root / rel} resolves outside {root} (to {target}); refusing to read it"
    )


def _resolve_download_files(name: str, root: Path, download_files: list[str]) -> ArtifactSet:
    root_real = _require_dir(name, root, "download_path")
    rels: set[str] = set()
    for item in download_files:
        pure = PurePosixPath(item)
        if not item or pure.is_absolute() or ".." in pure.parts or pure.as_posix() == ".":
            raise ArtifactError(
                f"model '{name}': download file {item!r} is not a plain path inside "
                f"{root} (absolute paths and '..' are refused)"
            )
        rel = pure.as_posix()
        check_artifact_name(name, root, rel)
        real = _real(name, root / rel)
        if not _inside(real, root_real):
            raise _escaping_link_error(name, root, root_real, rel)
        try:
            st = os.stat(real)
        except OSError:
            raise ArtifactError(
                f"model '{name}': listed download file {rel} not found in {root}"
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise ArtifactError(f"model '{name}': listed download file {root / rel} is not a file")
        rels.add(rel)
    return ArtifactSet(root=root, files=sorted(rels), kind="files", name=name)


def _resolve_folder(name: str, root: Path) -> ArtifactSet:
    root_real = _require_dir(name, root, "model_path")
    found: list[str] = []

    # Walk real paths; `ancestors` holds the real folders on the current branch
    # so a symlink back up the tree is not followed forever.
    def visit(dir_real: str, rel_prefix: str, ancestors: frozenset[str]) -> None:
        try:
            with os.scandir(dir_real) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise ArtifactError(
                f"model '{name}': cannot list {root / rel_prefix}: {exc.strerror}"
            ) from None
        for entry in entries:
            rel = rel_prefix + entry.name
            check_artifact_name(name, root, rel)
            if entry.is_symlink():
                target = _real(name, entry.path)
                if not _inside(target, root_real):
                    raise ArtifactError(
                        f"model '{name}': symlink {root / rel} points outside {root} "
                        f"(to {target}); refusing to follow it"
                    )
                try:
                    st = os.stat(target)
                except OSError:
                    raise ArtifactError(
                        f"model '{name}': symlink {root / rel} is broken (points to {target})"
                    ) from None
                if stat.S_ISDIR(st.st_mode):
                    if target not in ancestors:
                        visit(target, rel + "/", ancestors | {target})
                elif stat.S_ISREG(st.st_mode):
                    found.append(rel)
            elif entry.is_dir(follow_symlinks=False):
                visit(entry.path, rel + "/", ancestors | {entry.path})
            elif entry.is_file(follow_symlinks=False):
                found.append(rel)
            # fifos, sockets and devices are not model files: skipped

    visit(root_real, "", frozenset({root_real}))
    if not found:
        raise ArtifactError(f"model '{name}': no files found under model_path {root}")
    return ArtifactSet(root=root, files=sorted(found), kind="files", name=name)


def _parse_ollama_ref(name: str, model_path: str) -> tuple[str, str, str, str]:
    """``ollama:/[host/][namespace/]model[:tag]`` -> (host, namespace, model, tag)."""
    ref = model_path[len(OLLAMA_PREFIX) :].strip().lstrip("/")
    parts = ref.split("/")
    model, _, tag = parts[-1].partition(":")
    tag = tag or OLLAMA_DEFAULT_TAG
    host = OLLAMA_DEFAULT_REGISTRY
    head = parts[:-1]
    if len(parts) >= 3 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        host, head = parts[0], parts[1:-1]
    namespace = "/".join(head) or OLLAMA_DEFAULT_NAMESPACE
    pieces = [host, *namespace.split("/"), model, tag]
    if any(p in ("", ".", "..") for p in pieces):
        raise ArtifactError(f"model '{name}': malformed Ollama reference {model_path!r}")
    return host, namespace, model, tag


def _find_component(parent: Path, part: str) -> Path:
    # Ollama matches names case-insensitively; try the exact spelling first.
    exact = parent / part
    if exact.exists() or not parent.is_dir():
        return exact
    matches = [p for p in parent.iterdir() if p.name.lower() == part.lower()]
    return matches[0] if len(matches) == 1 else exact


def _resolve_ollama(name: str, model_path: str, models_dir: Path) -> ArtifactSet:
    host, namespace, model, tag = _parse_ollama_ref(name, model_path)
    manifest = models_dir / "manifests"
    for part in [host, *namespace.split("/"), model, tag]:
        manifest = _find_component(manifest, part)
    if not manifest.is_file():
        raise ArtifactError(
            f"model '{name}': Ollama manifest for {model_path!r} not found at {manifest}"
        )
    models_real = _real(name, models_dir)
    manifest_real = _real(name, manifest)
    if not _inside(manifest_real, models_real):
        raise ArtifactError(
            f"model '{name}': Ollama manifest {manifest} resolves outside {models_dir} "
            f"(to {manifest_real}); refusing to read it"
        )
    try:
        # Not read_text: a manifest swapped for a FIFO must not block verify.
        doc = json.loads(read_regular_file(manifest, _MAX_MANIFEST_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(
            f"model '{name}': Ollama manifest {manifest} is not readable JSON: {exc}"
        ) from None

    descriptors: list[Any] = []
    if isinstance(doc, dict) and isinstance(doc.get("layers"), list):
        if doc.get("config") is not None:
            descriptors.append(doc["config"])
        descriptors.extend(doc["layers"])
    if not descriptors:
        raise ArtifactError(f"model '{name}': Ollama manifest {manifest} lists no config or layers")

    expected: dict[str, str] = {}
    for desc in descriptors:
        digest = desc.get("digest") if isinstance(desc, dict) else None
        algo, _, hexdigest = digest.partition(":") if isinstance(digest, str) else ("", "", "")
        if algo != "sha256" or not _HEX64.fullmatch(hexdigest):
            raise ArtifactError(
                f"model '{name}': Ollama manifest {manifest} has an invalid blob digest {digest!r}"
            )
        rel = f"blobs/sha256-{hexdigest}"
        blob = models_dir / rel
        real = _real(name, blob)
        if not _inside(real, models_real):
            raise _escaping_link_error(name, models_dir, models_real, rel)
        if not os.path.isfile(real):
            raise ArtifactError(
                f"model '{name}': blob {digest} listed in Ollama manifest {manifest} "
                f"is missing ({blob})"
            )
        expected[rel] = hexdigest
    return ArtifactSet(
        root=models_dir,
        files=sorted(expected),
        kind="ollama",
        expected_digests=expected,
        name=name,
        manifest=manifest,
    )


# --- the stat cache ---------------------------------------------------------


def _warn(message: str) -> None:
    print(f"imageworks-loader: warning: {message}", file=sys.stderr)


_CACHE_VERSION = 1
# A save holds the cache lock for milliseconds, so concurrent verifies still
# merge their records; a holder that keeps it longer costs a verify at most
# this long, then one warning (the records are simply not remembered).
CACHE_LOCK_WAIT_S = 1.0
_MAX_CACHE_BYTES = 1 << 30
_MAX_MANIFEST_BYTES = 16 << 20
_STAT_KEYS = ("size", "mtime_ns", "ctime_ns", "ino")


def _stat_record(st: os.stat_result) -> dict[str, int]:
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
    }


def _read_cache_file(path: Path, *, quiet: bool = False) -> dict[str, dict[str, Any]]:
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
        and _HEX64.fullmatch(rec["sha256"])
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
        cache._entries = _read_cache_file(cache.path)
        return cache

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, abs_path: Path | str, st: os.stat_result) -> str | None:
        rec = self._entries.get(os.path.abspath(abs_path))
        if rec is None or any(rec[k] != v for k, v in _stat_record(st).items()):
            return None
        return rec["sha256"]

    def store(self, abs_path: Path | str, st: os.stat_result, sha256: str) -> None:
        rec = {**_stat_record(st), "sha256": sha256}
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
                merged = _read_cache_file(path, quiet=True)  # load() already warned
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


# --- hashing ----------------------------------------------------------------


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


class _Progress:
    """One throttled, self-overwriting status line on stderr."""

    INTERVAL = 0.25

    def __init__(self, files_total: int, bytes_total: int, stream: TextIO | None) -> None:
        self.files_total = files_total
        self.bytes_total = bytes_total
        self.files_done = 0
        self.bytes_done = 0
        self.stream = stream
        self._lock = threading.Lock()
        self._last = 0.0
        self._shown = False

    def add(self, nbytes: int = 0, files: int = 0) -> None:
        with self._lock:
            self.bytes_done += nbytes
            self.files_done += files
            if self.stream is None:
                return
            now = time.monotonic()
            if now - self._last >= self.INTERVAL or self.files_done == self.files_total:
                self._last = now
                self._draw()

    def _draw(self) -> None:
        gib = 1024**3
        self.stream.write(
            f"\rhashing: {self.files_done}/{self.files_total} files, "
            f"{self.bytes_done / gib:.2f}/{self.bytes_total / gib:.2f} GiB"
        )
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self.stream is not None and self._shown:
            self.stream.write("\n")
            self.stream.flush()


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
    progress: _Progress,
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
    aset: ArtifactSet, root: beneath.Root | None, real: str, rel: str
) -> tuple[int, os.stat_result]:
    """Open a file for hashing without following links or blocking, refusing
    anything that is not a regular file beneath the root."""
    shown = aset.root / rel
    who = f"model '{aset.name}'"
    try:
        if root is None:  # no openat here: the checked path, final link refused
            return beneath.open_checked_path(real)
        return root.open_file(real)
    except beneath.NotRegularFile:
        raise ArtifactError(
            f"{who}: {shown} is not a regular file (swapped while verifying?); refusing to read it"
        ) from None
    except beneath.LinkOnPath:
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
    root_real = _real(aset.name, root)
    stats = stats if stats is not None else HashStats()
    chunk = max(64 * 1024, int(chunk_bytes))

    # Resolve and stat every file again: the tree may have changed since it was
    # resolved, and nothing outside the root may be read.
    digests: dict[str, str] = {}
    todo: dict[str, list[str]] = {}  # real path -> relative paths sharing it
    checked: dict[str, os.stat_result] = {}  # real path -> its stat when checked
    for rel in aset.files:
        real = _real(aset.name, root / rel)
        if not _inside(real, root_real):
            raise _escaping_link_error(aset.name or "?", root, root_real, rel)
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
    meter = _Progress(stats.files_total, stats.bytes_total, sys.stderr if progress else None)
    meter.files_done = stats.cache_hits  # cache hits count as done from the start
    meter.bytes_done = stats.bytes_total - sum(st.st_size for st in checked.values())

    for rel, got in digests.items():  # cache hits must match their blob name too
        expected = aset.expected_digests.get(rel)
        if expected is not None and expected != got:
            raise _mismatch(aset, rel, expected, got)

    if todo:
        # Files are opened from the root's descriptor, never by path (see beneath.py).
        opened_root = beneath.Root(root_real) if beneath.SUPPORTED else None
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
    root: beneath.Root | None,
    todo: dict[str, list[str]],
    checked: dict[str, os.stat_result],
    digests: dict[str, str],
    cache: HashCache | None,
    workers: int,
    chunk: int,
    meter: _Progress,
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
            beneath.same_content_stat(checked[real], before)
            and beneath.same_content_stat(before, after)
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
            failed = [f for f in futures if f in done and f.exception() is not None]
            if failed:
                raise failed[0].exception()
        except BaseException:
            # Stop the others at their next chunk instead of reading gigabytes for nothing.
            cancel.set()
            for f in futures:
                f.cancel()
            raise
