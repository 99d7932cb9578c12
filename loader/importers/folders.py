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
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loader.errors import ImporterError
from loader.fileio import FileTooLarge, NotRegularFile, read_regular_file
from loader.importers.chat_template import TemplateStore, template_dir
from loader.importers.identity import (
    PATH_FIELDS,
    from_another_host,
    get_field,
    needs_repair,
    set_field,
)
from loader.importers.plan import (
    Candidate,
    EntryChange,
    ImportPlan,
    apply_plan,
    checked,
    plan_import,
    refresh_patterns,
)
from loader.importers.shape import (
    display_name,
    entry_name,
    file_sha256,
    portable_path,
    portable_port,
    relative_to_roots,
    stored_capabilities,
)
from loader.integrity.hashing import HashCache
from loader.literal import escape, literal
from loader.registry import strictjson
from loader.registry.core import Registry
from loader.registry.schema import RegistryEntry
from loader.registry.service import backend_default_port

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


# The largest config.json / tokenizer_config.json read (importers.max_json_bytes).
MAX_JSON_BYTES = 16 * 1024 * 1024
# Modification times recorded as dates: 1970 to the end of year 9999.
_LAST_DATE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def _read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """A model folder's JSON file, read as the layers are: a regular file of
    at most ``max_bytes``, inside its folder (a symlink leaving it is
    refused), strict JSON of bounded depth. ``{}`` when there is none."""
    if not os.path.lexists(path):
        return {}
    folder = os.path.realpath(path.parent)
    real = os.path.realpath(path)
    if os.path.commonpath([folder, real]) != folder:
        raise ImporterError(
            f"{path}: a symlink to {real}, outside the model folder; refusing to read it"
        )
    try:
        raw = read_regular_file(real, max_bytes)
    except FileNotFoundError:
        return {}  # a dangling link: no file
    except IsADirectoryError:
        raise ImporterError(f"{path}: is a folder, expected a JSON file") from None
    except NotRegularFile:
        raise ImporterError(
            f"{path}: not a regular file (a FIFO, device or socket); refusing to read it"
        ) from None
    except FileTooLarge:
        raise ImporterError(
            f"{path}: larger than {max_bytes:,} bytes (importers.max_json_bytes); "
            "refusing to read it"
        ) from None
    except OSError as exc:
        raise ImporterError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = strictjson.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ImporterError(f"{path}: not readable JSON (not UTF-8 text)") from None
    except strictjson.StrictJsonError as exc:
        raise ImporterError(f"{path}: not readable JSON ({exc.problem})") from None
    except ValueError as exc:
        raise ImporterError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ImporterError(f"{path}: not a JSON object")
    return data


def _newest_date(folder: Path, files: Sequence[str], stats: Sequence[os.stat_result]) -> str | None:
    """The newest modification time as an ISO date; a time outside 1970..9999
    (a clock gone wrong) is left out, with one warning line naming the file."""
    newest = None
    for rel, st in zip(files, stats, strict=True):
        if not 0 <= st.st_mtime <= _LAST_DATE:
            print(
                f"imageworks-loader: warning: {folder / rel}: modification time "
                f"{st.st_mtime:.0f} is outside the years 1970-9999; not used as a date",
                file=sys.stderr,
            )
            continue
        newest = st.st_mtime if newest is None else max(newest, st.st_mtime)
    return None if newest is None else datetime.fromtimestamp(newest, UTC).isoformat()


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


def _chat_template(
    folder: Path, templates: TemplateStore | None, max_json_bytes: int = MAX_JSON_BYTES
) -> dict[str, Any]:
    for file_name in ("chat_template.json", "chat_template.jinja"):
        path = Path(os.path.abspath(folder / file_name))  # never relative to this folder
        if path.is_file():
            return {"source": "external", "path": str(path), "sha256": file_sha256(path)}
    # Checked first (a link out of the folder, a FIFO, a huge file are refused).
    tokenizer = _read_json(folder / "tokenizer_config.json", max_json_bytes)
    extracted = templates.extract(folder) if templates is not None else None
    if extracted:
        return extracted
    if tokenizer.get("chat_template"):
        return {"source": "embedded"}
    return {}


def folder_stem(folder: Path) -> str:
    stem = folder.name.lower()
    while _QUANT_SUFFIX.search(stem):
        stem = _QUANT_SUFFIX.sub("", stem)
    return stem


def folder_fields(
    registry: Registry,
    folder: Path,
    backend: str,
    *,
    hash: bool,
    cache: HashCache,
    templates: TemplateStore | None = None,
) -> tuple[str, dict[str, Any], dict[tuple[str, ...], Any]]:
    """A model folder as a new entry's name, its fields (as they resolve) and
    the fields stored as written (``${paths.models}/…``, ``${backends.B.port}``)."""
    from loader.integrity.entry_hashing import hash_artifacts
    from loader.integrity.hashing import aggregate_sha256, resolve_artifact_set

    path = os.path.abspath(folder)
    max_json = int(registry.cfg.get("importers.max_json_bytes") or MAX_JSON_BYTES)
    config = _read_json(folder / "config.json", max_json)
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
    chat_template = _chat_template(folder, templates, max_json)
    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    context = config.get("max_position_embeddings") or text_config.get("max_position_embeddings")
    fields: dict[str, Any] = {
        "display_name": display_name(name),
        "backend": backend,
        "backend_config": {"port": backend_default_port(registry.cfg, backend), "model_path": path},
        "capabilities": stored_capabilities(
            {"text", "vision"} if has_vision(config, files) else {"text"}
        ),
        "chat_template": chat_template,
        "family": escape(folder.name.lower()),  # outside text: stored literally
        "source_provider": "hf" if config else "local",
        "quantization": quantization,
        "download_format": download_format,
        "download_path": path,
        "download_files": list(files),
        "download_size_bytes": sum(st.st_size for st in stats),
        "downloaded_at": _newest_date(folder, files, stats),
        "metadata": {
            "architectures": literal(config.get("architectures")),
            "model_type": literal(config.get("model_type")),
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
) -> tuple[ImportPlan, HashCache, TemplateStore]:
    from loader.integrity.entry_hashing import hash_cache_for

    entries = registry.ensure_loaded()
    recorded = {n: _local_folders(e) for n, e in sorted(entries.items()) if e.backend != "ollama"}
    cache = hash_cache_for(registry)
    templates = TemplateStore(template_dir(registry.cfg))
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
        if name and matches and name not in matches:
            raise ImporterError(
                f"model folder {os.path.abspath(folder)!r}: already recorded as "
                f"{matches[0]!r}; refusing to record it again as {name!r} "
                "(one download is one entry)"
            )
        chosen = entries[matches[0]].backend if matches else new_backend
        new_name, fields, raw = folder_fields(
            registry, folder, chosen, hash=hash, cache=cache, templates=templates
        )
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
        if "${" in new_name and not matches:
            raise ImporterError(
                f"{os.path.abspath(folder)}: its entry name {new_name!r} holds '${{', which a "
                "registry name may not hold (names are identities); choose one with --name"
            )
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
    refresh = refresh_patterns(registry)
    refresh.exact.add("chat_template")  # what the folder holds now
    plan = plan_import(registry, source, candidates, refresh)
    return plan, cache, templates


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
    plan, cache, templates = _import_folders(
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
        templates.commit()
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
    plan, _, templates = _import_folders(
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
    if not dry_run:
        templates.commit()
    return plan.to_json(dry_run=dry_run, written=written)
