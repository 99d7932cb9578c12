"""Which files a model is made of.

``resolve_artifact_set`` turns an entry's paths into a checked list of files
(a plain folder, tracked download files, or an Ollama manifest's blobs),
refusing anything that would lead outside the model's root and any name that
could forge a line of the aggregate hash.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from loader.errors import ArtifactError, ArtifactNameError
from loader.fileio import read_regular_file

__all__ = ["ArtifactSet", "check_artifact_name", "resolve_artifact_set"]

OLLAMA_PREFIX = "ollama:"
OLLAMA_DEFAULT_REGISTRY = "registry.ollama.ai"
OLLAMA_DEFAULT_NAMESPACE = "library"
OLLAMA_DEFAULT_TAG = "latest"
MAX_MANIFEST_BYTES = 16 << 20

HEX64 = re.compile(r"[0-9a-f]{64}")

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


def is_inside(path: str, root_real: str) -> bool:
    return path == root_real or os.path.commonpath([path, root_real]) == root_real


def real_path(name: str, path: Path | str) -> str:
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
    return real_path(name, root)


def escaping_link_error(name: str, root: Path, root_real: str, rel: str) -> ArtifactError:
    # Name the first component that is a link leading outside, not just the file.
    parts = PurePosixPath(rel).parts
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        candidate = root / prefix
        if candidate.is_symlink():
            target = real_path(name, candidate)
            if not is_inside(target, root_real):
                return ArtifactError(
                    f"model '{name}': symlink {candidate} points outside {root} "
                    f"(to {target}); refusing to follow it"
                )
    target = real_path(name, root / rel)
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
        real = real_path(name, root / rel)
        if not is_inside(real, root_real):
            raise escaping_link_error(name, root, root_real, rel)
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
                target = real_path(name, entry.path)
                if not is_inside(target, root_real):
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
    models_real = real_path(name, models_dir)
    manifest_real = real_path(name, manifest)
    if not is_inside(manifest_real, models_real):
        raise ArtifactError(
            f"model '{name}': Ollama manifest {manifest} resolves outside {models_dir} "
            f"(to {manifest_real}); refusing to read it"
        )
    try:
        # Not read_text: a manifest swapped for a FIFO must not block verify.
        doc = json.loads(read_regular_file(manifest, MAX_MANIFEST_BYTES).decode("utf-8"))
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
        if algo != "sha256" or not HEX64.fullmatch(hexdigest):
            raise ArtifactError(
                f"model '{name}': Ollama manifest {manifest} has an invalid blob digest {digest!r}"
            )
        rel = f"blobs/sha256-{hexdigest}"
        blob = models_dir / rel
        real = real_path(name, blob)
        if not is_inside(real, models_real):
            raise escaping_link_error(name, models_dir, models_real, rel)
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
