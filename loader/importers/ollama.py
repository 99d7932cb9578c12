"""Import the models of a running Ollama server (``GET /api/tags`` and
``POST /api/show``) into the discovered layer.

An Ollama model is the same model as an existing entry when the backend is
``ollama`` and ``served_model_id`` is its tag; the real registry names one tag
twice (``qwen3_8b_(Q4_K_M)`` and ``qwen3_8.2b_(Q4_K_M)``), and both are updated.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ArtifactError, ImporterError
from ..hashing import HashCache
from ..registry import Registry
from ..service import backend_default_port
from .plan import (
    Candidate,
    apply_plan,
    checked,
    missing_change,
    plan_import,
    refresh_patterns,
)
from .shape import display_name, entry_name, portable_port, stored_capabilities

OLLAMA_DEFAULT_URL = "http://127.0.0.1:11434"
URL_VARIABLE = "OLLAMA_HOST"
MISSING_MARK = ("metadata", "ollama_missing_since")

# Ollama's capability words -> canonical capabilities.
_CAPABILITIES = {
    "completion": "text",
    "vision": "vision",
    "tools": "tools",
    "thinking": "thinking",
    "embedding": "embedding",
}
_SIZE_TAG = re.compile(r"(\d+(?:\.\d+)?[bmk])(?:-(.+))?", re.IGNORECASE)


def ollama_base_url(text: str | None) -> str:
    """An Ollama address as a URL: ``host:port`` and ``host`` are accepted, as
    Ollama accepts them in ``OLLAMA_HOST``; the default port is 11434."""
    text = (text or "").strip().rstrip("/")
    if not text:
        return OLLAMA_DEFAULT_URL
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        raise ImporterError(f"Ollama URL {text!r}: the port is not a number") from None
    port = port or (443 if parts.scheme == "https" else 11434)
    return f"{parts.scheme}://{host}:{port}{parts.path}"


def ollama_entry_name(tag: str, quantization: str | None) -> str:
    """A new entry's name from its tag: ``qwen3:8b`` at Q4_K_M -> ``qwen3_8b_(Q4_K_M)``."""
    model, _, version = tag.rsplit("/", 1)[-1].partition(":")
    base = re.sub(r"[-_.]gguf$", "", model, flags=re.IGNORECASE).lower()
    version = version.lower() or "latest"
    quant = (quantization or "").lower()
    if quant and version.endswith(quant):  # "8b-instruct-q4_k_m": the quant is said once
        version = version[: -len(quant)].rstrip("-_.")
    size = _SIZE_TAG.fullmatch(version)
    if not version:
        stem = base
    elif size:
        stem = f"{base}_{size.group(1)}" + (f"-{size.group(2)}" if size.group(2) else "")
    else:
        stem = f"{base}-{version}"
    return entry_name(stem, quantization)


def ollama_family(name: str) -> str:
    """The family the real registry records: the name's stem, dashed (``qwen3-8b``)."""
    return name.rsplit("_(", 1)[0].replace("_", "-")


class OllamaClient:
    """The two reads an import needs, with one-line errors."""

    def __init__(self, url: str, timeout_s: float) -> None:
        import httpx

        self.url = url
        self._client = httpx.Client(base_url=url, timeout=timeout_s)

    def __enter__(self) -> OllamaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ImporterError(
                f"Ollama not reachable at {self.url} ({type(exc).__name__}: {exc}); start it, "
                f"or set {URL_VARIABLE} (or importers.ollama.url, or --url) to where it listens"
            ) from None
        if response.status_code != 200:
            raise ImporterError(
                f"{what}: {method} {self.url}{path} answered HTTP {response.status_code}"
            )
        try:
            return response.json()
        except ValueError:
            raise ImporterError(f"{what}: {path} did not answer JSON (malformed payload)") from None

    def tags(self) -> list[dict[str, Any]]:
        data = self._request("GET", "/api/tags", f"Ollama at {self.url}")
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise ImporterError(
                f"Ollama at {self.url}: malformed /api/tags payload: no 'models' list"
            )
        return models

    def show(self, tag: str) -> dict[str, Any]:
        data = self._request("POST", "/api/show", f"Ollama model {tag!r}", json={"model": tag})
        if not isinstance(data, dict):
            raise ImporterError(f"Ollama model {tag!r}: malformed /api/show payload: not an object")
        return data


def _malformed(tag: str, endpoint: str, problem: str) -> ImporterError:
    return ImporterError(f"Ollama model {tag!r}: malformed {endpoint} payload: {problem}")


def _tag_of(item: Any) -> str:
    tag = item.get("model") or item.get("name") if isinstance(item, dict) else None
    if not isinstance(tag, str) or not tag.strip():
        raise ImporterError(
            f"Ollama: malformed /api/tags payload: a model without a name: {item!r}"
        )
    return tag.strip()


def _model_facts(tag: str, listed: dict[str, Any], shown: dict[str, Any]) -> dict[str, Any]:
    """The values an entry records, checked for type so a bad payload names its model."""
    details = listed.get("details") or shown.get("details") or {}
    if not isinstance(details, dict):
        raise _malformed(tag, "/api/tags", "'details' is not an object")
    for key in ("family", "parameter_size", "quantization_level", "format"):
        if details.get(key) is not None and not isinstance(details[key], str):
            raise _malformed(tag, "/api/tags", f"details.{key} is not text")
    size, digest = listed.get("size"), listed.get("digest")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise _malformed(tag, "/api/tags", f"size is not a byte count: {size!r}")
    if digest is not None and not isinstance(digest, str):
        raise _malformed(tag, "/api/tags", "digest is not text")
    capabilities = shown.get("capabilities") or []
    if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
        raise _malformed(tag, "/api/show", "'capabilities' is not a list of words")
    info = shown.get("model_info") or {}
    if not isinstance(info, dict):
        raise _malformed(tag, "/api/show", "'model_info' is not an object")
    architecture = info.get("general.architecture")
    context = info.get(f"{architecture}.context_length") if architecture else None
    embedding = info.get(f"{architecture}.embedding_length") if architecture else None
    for key, value in (("context_length", context), ("embedding_length", embedding)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise _malformed(tag, "/api/show", f"model_info {architecture}.{key} is not a number")
    template, modified = shown.get("template"), listed.get("modified_at")
    return {
        "details": details,
        "size": size,
        "digest": digest,
        "modified_at": modified if isinstance(modified, str) else None,
        "capabilities": capabilities,
        "architecture": architecture if isinstance(architecture, str) else None,
        "context_length": context,
        "embedding_length": embedding,
        "has_template": isinstance(template, str) and bool(template.strip()),
    }


def candidate_fields(
    tag: str, facts: dict[str, Any], registry: Registry, name: str
) -> dict[str, Any]:
    """An Ollama model as entry fields, shaped like the real registry's."""
    details = facts["details"]
    quantization = details.get("quantization_level")
    enabled = {_CAPABILITIES[c] for c in facts["capabilities"] if c in _CAPABILITIES}
    backends = registry.cfg.get("backends") or {}
    return {
        "display_name": display_name(name),
        "backend": "ollama",
        "backend_config": {
            "port": backend_default_port(registry.cfg, "ollama"),
            "model_path": f"ollama:/{tag}",
            # The seed's host rule; an entry that has a host keeps it (see plan).
            "host": (backends.get("ollama") or {}).get("host") or "host.docker.internal",
        },
        "capabilities": stored_capabilities(enabled),
        "chat_template": {"source": "embedded"} if facts["has_template"] else {},
        "served_model_id": tag,
        "family": ollama_family(name),
        "source_provider": "ollama",
        "quantization": quantization.lower() if quantization else None,
        "download_format": (details.get("format") or "gguf").lower(),
        "download_path": f"ollama:/{tag}",
        "download_size_bytes": facts["size"],
        "downloaded_at": facts["modified_at"],
        "metadata": {
            "ollama_family": details.get("family"),
            "ollama_architecture": facts["architecture"],
            "ollama_parameter_size": details.get("parameter_size"),
            "ollama_context_length": facts["context_length"],
            "ollama_embedding_length": facts["embedding_length"],
            "ollama_capabilities": list(facts["capabilities"]),
            "ollama_digest": facts["digest"],
            "ollama_missing_since": None,  # back again: clear the mark
        },
    }


def _manifest_artifacts(
    registry: Registry, tag: str, name: str, cache: HashCache
) -> dict[str, Any] | None:
    """Artifacts from the tag's manifest when the models folder is readable."""
    from ..hashing import aggregate_sha256, resolve_artifact_set
    from ..locks import hash_artifacts

    folder = Path(str(registry.cfg.get("paths.ollama_models"))).expanduser()
    if not (folder.is_dir() and os.access(folder, os.R_OK | os.X_OK)):
        return None
    try:
        artifact_set = resolve_artifact_set(
            name=name,
            model_path=f"ollama:/{tag}",
            download_path=None,
            download_files=None,
            ollama_models_dir=folder,
        )
    except ArtifactError as exc:
        print(f"imageworks-loader: warning: no artifacts recorded: {exc}", file=sys.stderr)
        return None
    files = hash_artifacts(registry, artifact_set, cache=cache)
    return {"aggregate_sha256": aggregate_sha256(files), "files": files}


def import_ollama(
    registry: Registry, url: str | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Read a running Ollama and record its models; see docs/importers.md."""
    from ..locks import hash_cache_for

    base = ollama_base_url(url or registry.cfg.get("importers.ollama.url"))
    timeout = float(registry.cfg.get("importers.ollama.timeout_s") or 10)
    with OllamaClient(base, timeout) as client:
        listed = {}
        for item in client.tags():
            listed[_tag_of(item)] = item
        facts = {tag: _model_facts(tag, item, client.show(tag)) for tag, item in listed.items()}

    entries = registry.ensure_loaded()
    by_tag: dict[str, list[str]] = {}
    for name in sorted(entries):
        entry = entries[name]
        if entry.backend == "ollama" and entry.served_id:
            by_tag.setdefault(entry.served_id, []).append(name)

    cache = hash_cache_for(registry)
    candidates = []
    for tag in sorted(facts):
        quantization = facts[tag]["details"].get("quantization_level")
        matches = by_tag.get(tag, [])
        name = ollama_entry_name(tag, quantization)
        fields = candidate_fields(tag, facts[tag], registry, name)
        artifacts = _manifest_artifacts(registry, tag, matches[0] if matches else name, cache)
        if artifacts is not None:
            fields["artifacts"] = artifacts
        if matches:
            fields.pop("display_name")  # each existing entry keeps its own
        # the port as config says it (backends.ollama.port moves the entry)
        raw = {("backend_config", "port"): portable_port(registry.cfg, "ollama")}
        candidates.append(checked(Candidate("Ollama model", tag, name, fields, matches, raw=raw)))

    plan = plan_import(
        registry, {"source": "ollama", "url": base}, candidates, refresh_patterns(registry)
    )
    now = datetime.now(UTC).isoformat()
    for tag in sorted(set(by_tag) - set(facts)):
        for name in by_tag[tag]:
            plan.missing.append(
                missing_change(
                    entries[name],
                    tag,
                    MISSING_MARK,
                    now,
                    f"not served by {base}; kept, and marked",
                )
            )
    written = apply_plan(registry, plan, dry_run=dry_run)
    if not dry_run:
        cache.save()
    return plan.to_json(dry_run=dry_run, written=written)
