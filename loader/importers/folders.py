"""Import model folders (Hugging Face layout, or GGUF files) into the
discovered layer: ``import-dir`` for folders you name, ``rediscover`` for
every model folder under the configured model roots.

A model folder holds a ``config.json`` or a ``.gguf`` file. A folder that an
entry already records (same backend, same resolved path) updates that entry.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ImporterError
from ..hashing import HashCache
from ..registry import Registry
from ..schema import RegistryEntry
from ..service import backend_default_port
from .identity import PATH_FIELDS, from_another_host, get_field, needs_repair, set_field
from .plan import (
    Candidate,
    EntryChange,
    ImportPlan,
    apply_plan,
    checked,
    plan_import,
    refresh_patterns,
)
from .shape import (
    display_name,
    entry_name,
    file_sha256,
    portable_path,
    portable_port,
    relative_to_roots,
    stored_capabilities,
)

# config.json's quantization_config.quant_method -> download_format
_QUANT_FORMATS = {"awq": "awq", "gptq": "gptq", "fp8": "fp8", "bitsandbytes": "bnb", "bnb": "bnb"}
_DTYPES = {
    "bfloat16": "bf16",
    "float16": "fp16",
    "float32": "fp32",
    "half": "fp16",
    "float": "fp32",
}
_GGUF_QUANT = re.compile(
    r"(?:^|[-_.])((?:i?q\d(?:_[a-z0-9]+)*)|bf16|f16|f32|mxfp4)(?=\.gguf$|[-_.])", re.IGNORECASE
)
# Quantization words that end folder names ("Qwen2.5-VL-7B-Instruct-AWQ"): the
# entry name says the quantization once, in its "_(AWQ)" suffix.
_QUANT_SUFFIX = re.compile(
    r"[-_.](awq|gptq|fp8|fp16|bf16|fp32|int4|int8|bnb|4bit|8bit|gguf|mxfp4)$", re.IGNORECASE
)
_SKIPPED_FOLDERS = {".git", ".cache", "__pycache__"}


def is_model_folder(path: Path) -> bool:
    """A folder holding a ``config.json`` or a ``.gguf`` file."""
    if (path / "config.json").is_file():
        return True
    try:
        return any(p.suffix.lower() == ".gguf" and p.is_file() for p in path.iterdir())
    except OSError:
        return False


def find_model_folders(root: Path, depth: int) -> list[Path]:
    """Model folders at most ``depth`` levels below ``root`` (root included);
    a model folder's own subfolders are not searched."""
    found: list[Path] = []
    seen: set[str] = set()

    def visit(folder: Path, left: int) -> None:
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop, or two links to one model
            return
        seen.add(real)
        if is_model_folder(folder):
            found.append(folder)
            return
        if left <= 0:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if child.name not in _SKIPPED_FOLDERS:
                visit(child, left - 1)

    visit(root, depth)
    return found


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ImporterError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ImporterError(f"{path}: not a JSON object")
    return data


def _format_and_quantization(
    config: dict[str, Any], files: Sequence[str]
) -> tuple[str | None, str | None]:
    quant = config.get("quantization_config")
    if isinstance(quant, dict):
        method = str(quant.get("quant_method") or "").lower()
        if method in _QUANT_FORMATS:
            return _QUANT_FORMATS[method], _QUANT_FORMATS[method]
        if quant.get("load_in_4bit") or quant.get("load_in_8bit"):
            return "bnb", "bnb"
        if method == "compressed-tensors" and '"type": "float"' in json.dumps(quant):
            return "fp8", "fp8"
        if method:
            return "safetensors", method
    ggufs = sorted(f for f in files if f.lower().endswith(".gguf") and "mmproj" not in f.lower())
    if ggufs and not any(f.endswith(".safetensors") for f in files):
        match = _GGUF_QUANT.search(Path(ggufs[0]).name)
        return "gguf", match.group(1).lower() if match else None
    dtype = config.get("torch_dtype") or config.get("dtype")
    if dtype is None and isinstance(config.get("text_config"), dict):
        dtype = config["text_config"].get("torch_dtype") or config["text_config"].get("dtype")
    quantization = _DTYPES.get(str(dtype).lower()) if dtype else None
    if any(f.endswith(".safetensors") for f in files):
        return "safetensors", quantization
    return None, quantization


def has_vision(config: dict[str, Any], files: Sequence[str]) -> bool:
    """A vision-language model: a ``vision_config`` or vision tower, an
    architecture like ``…VL…`` or ``Llava…``, or a GGUF multimodal projector."""
    if any(key in config for key in ("vision_config", "vision_tower", "mm_vision_tower")):
        return True
    for arch in config.get("architectures") or []:
        if isinstance(arch, str) and ("VL" in arch or arch.startswith("Llava")):
            return True
    return any("mmproj" in f.lower() and f.lower().endswith(".gguf") for f in files)


def _chat_template(folder: Path) -> dict[str, Any]:
    for file_name in ("chat_template.json", "chat_template.jinja"):
        path = Path(os.path.abspath(folder / file_name))  # never relative to this folder
        if path.is_file():
            return {"source": "external", "path": str(path), "sha256": file_sha256(path)}
    tokenizer = _read_json(folder / "tokenizer_config.json")
    if tokenizer.get("chat_template"):
        return {"source": "embedded"}
    return {}


def folder_stem(folder: Path) -> str:
    stem = folder.name.lower()
    while _QUANT_SUFFIX.search(stem):
        stem = _QUANT_SUFFIX.sub("", stem)
    return stem


def folder_fields(
    registry: Registry, folder: Path, backend: str, *, hash: bool, cache: HashCache
) -> tuple[str, dict[str, Any], dict[tuple[str, ...], Any]]:
    """A model folder as a new entry's name, its fields (as they resolve) and
    the fields stored as written (``${paths.models}/…``, ``${backends.B.port}``)."""
    from ..hashing import aggregate_sha256, resolve_artifact_set
    from ..locks import hash_artifacts

    path = os.path.abspath(folder)
    config = _read_json(folder / "config.json")
    artifact_set = resolve_artifact_set(
        name=path,
        model_path=path,
        download_path=None,
        download_files=None,
        ollama_models_dir=Path(path),
    )
    files = artifact_set.files
    stats = [os.stat(folder / rel) for rel in files]
    download_format, quantization = _format_and_quantization(config, files)
    name = entry_name(folder_stem(folder), quantization)
    chat_template = _chat_template(folder)
    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    context = config.get("max_position_embeddings") or text_config.get("max_position_embeddings")
    newest = max(st.st_mtime for st in stats)
    fields: dict[str, Any] = {
        "display_name": display_name(name),
        "backend": backend,
        "backend_config": {"port": backend_default_port(registry.cfg, backend), "model_path": path},
        "capabilities": stored_capabilities(
            {"text", "vision"} if has_vision(config, files) else {"text"}
        ),
        "chat_template": chat_template,
        "family": folder.name.lower(),
        "source_provider": "hf" if config else "local",
        "quantization": quantization,
        "download_format": download_format,
        "download_path": path,
        "download_files": list(files),
        "download_size_bytes": sum(st.st_size for st in stats),
        "downloaded_at": datetime.fromtimestamp(newest, UTC).isoformat(),
        "metadata": {
            "architectures": config.get("architectures"),
            "model_type": config.get("model_type"),
            "context_length": context if isinstance(context, int) else None,
            "has_chat_template": bool(chat_template),
        },
    }
    if hash:
        artifact_set = resolve_artifact_set(
            name=name,
            model_path=None,
            download_path=path,
            download_files=list(files),
            ollama_models_dir=Path(path),
        )
        digests = hash_artifacts(registry, artifact_set, cache=cache)
        fields["artifacts"] = {"aggregate_sha256": aggregate_sha256(digests), "files": digests}
    raw: dict[tuple[str, ...], Any] = {
        ("backend_config", "port"): portable_port(registry.cfg, backend)
    }
    for field_path in PATH_FIELDS:
        value = get_field(fields, field_path)
        if isinstance(value, str):
            raw[field_path] = portable_path(registry.cfg, value)
    return name, fields, raw


def _local_folders(entry: RegistryEntry) -> set[str]:
    """Resolved local paths an entry records (model_path, download_path)."""
    found = set()
    for value in (entry.backend_config.model_path, entry.download_path):
        if value and not value.startswith("ollama:") and os.path.isabs(os.path.expanduser(value)):
            found.add(os.path.realpath(os.path.expanduser(value)))
    return found


def _import_folders(
    registry: Registry,
    folders: Iterable[Path],
    source: dict[str, Any],
    *,
    backend: str | None,
    new_backend: str,
    name: str | None,
    hash: bool,
) -> tuple[ImportPlan, HashCache]:
    from ..locks import hash_cache_for

    entries = registry.ensure_loaded()
    recorded = {n: _local_folders(e) for n, e in sorted(entries.items()) if e.backend != "ollama"}
    cache = hash_cache_for(registry)
    candidates = []
    for folder in folders:
        real = os.path.realpath(folder)
        rel = relative_to_roots(registry.cfg, os.path.abspath(folder))
        matches = [
            n
            for n, paths in recorded.items()
            if (real in paths or from_another_host(entries[n], rel))
            and (backend is None or entries[n].backend == backend)
        ]
        chosen = entries[matches[0]].backend if matches else new_backend
        new_name, fields, raw = folder_fields(registry, folder, chosen, hash=hash, cache=cache)
        force: set[tuple[str, ...]] = set()
        if matches:
            fields.pop("display_name")
            current = entries[matches[0]].model_dump()
            for field_path in PATH_FIELDS:
                before, after = get_field(current, field_path), get_field(fields, field_path)
                if needs_repair(field_path, before, after):
                    force.add(field_path)
                elif (
                    isinstance(before, str)
                    and isinstance(after, str)
                    and os.path.realpath(os.path.expanduser(before)) == os.path.realpath(after)
                ):
                    # Keep the spelling the entry records (a link, ~,
                    # ${paths.models}…) when it leads to the same place.
                    set_field(fields, field_path, before)
                    raw.pop(field_path, None)
        new_name = name or new_name
        if name:
            fields["display_name"] = display_name(name)
        candidates.append(
            checked(
                Candidate(
                    "model folder",
                    os.path.abspath(folder),
                    new_name,
                    fields,
                    matches,
                    raw=raw,
                    force=force,
                )
            )
        )
    plan = plan_import(registry, source, candidates, refresh_patterns(registry))
    return plan, cache


def import_dirs(
    registry: Registry,
    dirs: Sequence[str],
    backend: str | None = None,
    name: str | None = None,
    dry_run: bool = False,
    hash: bool = False,
) -> dict[str, Any]:
    """Record each model folder named (or found below a folder named)."""
    if not dirs:
        raise ImporterError(
            "import-dir: give one or more model folders (imageworks-loader import-dir FOLDER ...)"
        )
    backend = backend or "vllm"
    depth = int(registry.cfg.get("importers.rediscover.depth") or 0)
    folders: list[Path] = []
    for text in dirs:
        path = Path(os.path.expanduser(str(text)))
        if not path.is_dir():
            raise ImporterError(f"{path.absolute()}: not a folder")
        found = find_model_folders(path, depth)
        if not found:
            raise ImporterError(
                f"{path.absolute()}: no model folder (one holding config.json or a .gguf file) "
                f"within {depth} levels (importers.rediscover.depth)"
            )
        known = {os.path.realpath(f) for f in folders}
        folders.extend(f for f in found if os.path.realpath(f) not in known)
    if name and len(folders) > 1:
        raise ImporterError(
            f"--name {name!r} names one model, but {len(folders)} model folders were found: "
            + ", ".join(str(f) for f in folders)
        )
    source = {
        "source": "folders",
        "dirs": [os.path.abspath(os.path.expanduser(str(d))) for d in dirs],
    }
    plan, cache = _import_folders(
        registry,
        folders,
        source,
        backend=backend,
        new_backend=backend,
        name=name,
        hash=hash,
    )
    written = apply_plan(registry, plan, dry_run=dry_run)
    if not dry_run:
        cache.save()
    return plan.to_json(dry_run=dry_run, written=written)


def rediscover(registry: Registry, dry_run: bool = False) -> dict[str, Any]:
    """Import every model folder under ``paths.models``; report entries whose
    folder has gone (they are kept)."""
    roots = registry.cfg.get("paths.models") or []
    roots = [roots] if isinstance(roots, str) else list(roots)
    depth = int(registry.cfg.get("importers.rediscover.depth") or 0)
    backend = str(registry.cfg.get("importers.rediscover.backend") or "vllm")
    folders: list[Path] = []
    for root in roots:
        path = Path(os.path.expanduser(str(root)))
        if path.is_dir():
            folders.extend(find_model_folders(path, depth))
    source = {"source": "rediscover", "roots": [str(r) for r in roots], "depth": depth}
    plan, _ = _import_folders(
        registry,
        folders,
        source,
        backend=None,
        new_backend=backend,
        name=None,
        hash=False,
    )
    entries = registry.ensure_loaded()
    for entry_name_, entry in sorted(entries.items()):
        gone = sorted(p for p in _local_folders(entry) if not os.path.exists(p))
        if entry.backend != "ollama" and gone:
            plan.missing.append(EntryChange(entry_name_, gone[0], note="folder not found; kept"))
    written = apply_plan(registry, plan, dry_run=dry_run)
    return plan.to_json(dry_run=dry_run, written=written)
