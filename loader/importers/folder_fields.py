"""What a model folder says about itself: the fields of its entry.

``folder_fields`` reads a folder's ``config.json`` (bounded, strict, never
through a link leaving the folder), its files' names and dates, and its chat
template, and returns a new entry's name and fields, with the fields stored
as written (``${paths.models}/…``, ``${backends.B.port}``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loader import logs, strictjson
from loader.errors import ImporterError
from loader.fileio import FileTooLarge, NotRegularFile, read_regular_file
from loader.importers.chat_template import TemplateStore
from loader.importers.identity import PATH_FIELDS, get_field
from loader.importers.shape import (
    display_name,
    entry_name,
    file_sha256,
    portable_path,
    portable_port,
    stored_capabilities,
)
from loader.integrity.hash_cache import HashCache
from loader.literal import escape, literal
from loader.registry.core import Registry
from loader.registry.service import backend_default_port

__all__ = ["MAX_JSON_BYTES", "folder_fields", "folder_stem", "has_vision", "newest_date"]

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


def newest_date(folder: Path, files: Sequence[str], stats: Sequence[os.stat_result]) -> str | None:
    """The newest modification time as an ISO date; a time outside 1970..9999
    (a clock gone wrong) is left out, with one warning line naming the file."""
    newest = None
    for rel, st in zip(files, stats, strict=True):
        if not 0 <= st.st_mtime <= _LAST_DATE:
            logs.warning(
                __name__,
                f"{folder / rel}: modification time "
                f"{st.st_mtime:.0f} is outside the years 1970-9999; not used as a date",
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
    max_json = registry.cfg.importers.max_json_bytes
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
    text_config = config.get("text_config")
    if not isinstance(text_config, dict):
        text_config = {}
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
        "downloaded_at": newest_date(folder, files, stats),
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
