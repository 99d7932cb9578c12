"""Import the models of a running Ollama server (``GET /api/tags`` and
``POST /api/show``) into the discovered layer.

An Ollama model is the same model as an existing entry when the backend is
``ollama`` and ``served_model_id`` is its tag; the real registry names one tag
twice (``qwen3_8b_(Q4_K_M)`` and ``qwen3_8.2b_(Q4_K_M)``), and both are updated.

Ollama is a server people may not control, so each model is checked at the
door (``ollama_door``): a listing with some bad models records the good ones
and names each bad one. What it says is stored literally (``loader.literal``):
a ``${...}`` in a family or a date is text, never configuration.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loader import logs
from loader.errors import ArtifactError, ImporterError
from loader.importers.ollama_client import URL_VARIABLE, OllamaReader
from loader.importers.ollama_door import CAPABILITIES, BadModel, model_facts, shown_tag, tag_of
from loader.importers.plan import (
    Candidate,
    apply_plan,
    checked,
    describe,
    missing_change,
    plan_import,
    refresh_patterns,
)
from loader.importers.shape import display_name, entry_name, portable_port, stored_capabilities
from loader.integrity.hashing import HashCache
from loader.literal import literal
from loader.registry.core import Registry
from loader.registry.service import backend_default_port

__all__ = ["URL_VARIABLE", "import_ollama", "ollama_base_url", "ollama_entry_name"]

OLLAMA_DEFAULT_URL = "http://127.0.0.1:11434"
MISSING_MARK = ("metadata", "ollama_missing_since")

_SIZE_TAG = re.compile(r"\d+(?:\.\d+)?[bmk]", re.IGNORECASE)
# Quantization words ImageWorks drops from a repo name ("...-20b-mxfp4-abliterated").
_QUANT_TOKEN = re.compile(
    r"i?q\d(?:_[a-z0-9]+)*|mxfp4|mxfp8|fp8|fp16|bf16|f16|f32|fp32|int4|int8|nf4|awq|gptq",
    re.IGNORECASE,
)


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
    """A new entry's name from its tag, as ImageWorks names fresh imports:
    ``qwen3:8b`` at Q4_K_M -> ``qwen3_8b_(Q4_K_M)`` (a size tag joins with
    ``_``); ``llama3.1:8b-instruct-q5_K_M`` -> ``llama3.1-8b-instruct_(Q5_K_M)``
    (a variant tag joins with ``-``, the quantization is said once);
    ``huihui-gpt-oss-20b-mxfp4-abliterated-v2:latest`` at MXFP4 ->
    ``huihui-gpt-oss-20b-abliterated-v2-latest_(MXFP4)`` (a quantization word
    inside the repo name is dropped)."""
    model, _, version = tag.rsplit("/", 1)[-1].partition(":")
    base = re.sub(r"[-_.]gguf$", "", model, flags=re.IGNORECASE).lower()
    kept = [word for word in base.split("-") if not _QUANT_TOKEN.fullmatch(word)]
    base = "-".join(kept) or base
    version = version.lower() or "latest"
    quant = (quantization or "").lower()
    if quant and version.endswith(quant):  # "8b-instruct-q4_k_m": the quant is said once
        version = version[: -len(quant)].rstrip("-_.")
    if not version:
        stem = base
    elif _SIZE_TAG.fullmatch(version):
        stem = f"{base}_{version}"
    else:
        stem = f"{base}-{version}"
    return entry_name(stem, quantization)


def ollama_family(name: str) -> str:
    """The family the real registry records: the name's stem, dashed (``qwen3-8b``)."""
    return name.rsplit("_(", 1)[0].replace("_", "-")


def candidate_fields(
    tag: str, facts: dict[str, Any], registry: Registry, name: str
) -> dict[str, Any]:
    """An Ollama model as entry fields, shaped like the real registry's."""
    details = facts["details"]
    quantization = details.get("quantization_level")
    enabled = {CAPABILITIES[c] for c in facts["capabilities"] if c in CAPABILITIES}
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


def _models_folder(registry: Registry) -> Path | None:
    """The Ollama models folder, when it is readable (looked at once per import)."""
    folder = registry.cfg.paths.ollama_models or Path()
    return folder if folder.is_dir() and os.access(folder, os.R_OK | os.X_OK) else None


def _manifest_artifacts(
    registry: Registry, tag: str, name: str, cache: HashCache, folder: Path
) -> dict[str, Any] | None:
    """Artifacts from the tag's manifest in the Ollama models folder."""
    from loader.integrity.entry_hashing import hash_artifacts
    from loader.integrity.hashing import aggregate_sha256, resolve_artifact_set

    try:
        artifact_set = resolve_artifact_set(
            name=name,
            model_path=f"ollama:/{tag}",
            download_path=None,
            download_files=None,
            ollama_models_dir=folder,
        )
    except ArtifactError as exc:
        logs.warning(__name__, f"no artifacts recorded: {exc}")
        return None
    files = hash_artifacts(registry, artifact_set, cache=cache)
    return {"aggregate_sha256": aggregate_sha256(files), "files": files}


def _listing(items: list[Any], url: str, refused: list[tuple[str, str]]) -> dict[str, Any]:
    """The listing by tag. A tag listed twice keeps its later item, said in
    one warning line; an item without a usable tag is refused."""
    listed: dict[str, Any] = {}
    counts: Counter[str] = Counter()
    for item in items:
        try:
            tag = tag_of(item)
        except BadModel as bad:
            refused.append((bad.tag, str(bad)))
            continue
        counts[tag] += 1
        listed[tag] = item
    twice = sorted(tag for tag, count in counts.items() if count > 1)
    if twice:
        shown = ", ".join(f"{shown_tag(t)} ×{counts[t]}" for t in twice[:10])
        more = f" and {len(twice) - 10} more" if len(twice) > 10 else ""
        logs.warning(
            __name__,
            f"Ollama at {url} lists {len(twice)} tag"
            f"{'s' if len(twice) > 1 else ''} more than once ({shown}{more}); "
            "the later listing of each is used",
        )
    return listed


def _settled(fields: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """``fields`` (stored form) with each value that already holds, once
    resolved, what the entry holds replaced by the entry's own value, so
    re-importing escaped text (``\\${...}``) is no change."""
    out = dict(fields)
    for key, value in fields.items():
        now = current.get(key)
        if isinstance(value, dict) and isinstance(now, dict):
            out[key] = _settled(value, now)
        elif value != now and literal(now) == value:
            out[key] = now
    return out


def import_ollama(
    registry: Registry,
    url: str | None = None,
    dry_run: bool = False,
    *,
    keep_entries: bool = True,
) -> dict[str, Any]:
    """Read a running Ollama and record its models; see docs/importers.md.

    The report's ``refused`` lists each model that could not be recorded (its
    tag and the one-line reason); the good ones are recorded all the same.
    ``keep_entries=False``: the registry lets go of its validated entries
    after the save (see ``Registry.save``); the front doors pass it."""
    from loader.integrity.entry_hashing import hash_cache_for

    base = ollama_base_url(url or registry.cfg.importers.ollama_url)
    settings = registry.cfg.ollama_import
    refused: list[tuple[str, str]] = []
    facts: dict[str, dict[str, Any]] = {}
    with OllamaReader(base, settings) as reader:
        listed = _listing(reader.tags(), base, refused)
        for tag, found in reader.each_shown(listed.items(), model_facts):
            if isinstance(found, BadModel):
                refused.append((tag, str(found)))
            else:
                facts[tag] = found
    served = set(listed)  # the listing's items are in the facts now
    del listed

    registry.ensure_composed()  # compared with the layers: compose once, not also the snapshot
    entries = registry.ensure_loaded()
    by_tag: dict[str, list[str]] = {}
    for name in sorted(entries):
        entry = entries[name]
        if entry.backend == "ollama" and entry.served_id:
            by_tag.setdefault(entry.served_id, []).append(name)

    folder = _models_folder(registry)
    cache = hash_cache_for(registry) if folder is not None else None
    candidates = _each_candidate(registry, facts, by_tag, folder, cache, refused)
    # One model at a time: what an unchanged model says is dropped once
    # compared (10,000 tags: their facts and fields are never all in memory).
    plan = plan_import(
        registry, {"source": "ollama", "url": base}, candidates, refresh_patterns(registry)
    )
    now = datetime.now(UTC).isoformat()
    for tag in sorted(set(by_tag) - served):
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
    written = apply_plan(registry, plan, dry_run=dry_run, keep_entries=keep_entries)
    if refused:  # a failed command refreshes no stale snapshot (a save did its own)
        registry.discard_snapshot_refresh()
    if not dry_run and cache is not None:
        cache.save()
    report = plan.to_json(dry_run=dry_run, written=written)
    report["refused"] = [{"model": tag, "error": message} for tag, message in refused]
    return report


def _each_candidate(
    registry: Registry,
    facts: dict[str, dict[str, Any]],
    by_tag: dict[str, list[str]],
    folder: Path | None,
    cache: HashCache | None,
    refused: list[tuple[str, str]],
) -> Iterator[Candidate]:
    """The checked candidates, tag by tag (each tag's facts are let go as it
    is reached); a tag that cannot be recorded goes to ``refused``."""
    claimed: dict[str, str] = {}  # a new name -> the tag that takes it
    for tag in sorted(facts):
        found = facts.pop(tag)
        matches = by_tag.get(tag, [])
        name = ollama_entry_name(tag, found["details"]["quantization_level"])
        artifacts = None
        if folder is not None and cache is not None:
            owner = matches[0] if matches else name
            artifacts = _manifest_artifacts(registry, tag, owner, cache, folder)
        try:
            made = _candidates(registry, tag, literal(found), name, matches, claimed, artifacts)
        except ImporterError as exc:
            refused.append((tag, str(exc)))
            continue
        yield from made


def _candidates(
    registry: Registry,
    tag: str,
    stored: dict[str, Any],
    name: str,
    matches: list[str],
    claimed: dict[str, str],
    artifacts: dict[str, Any] | None,
) -> list[Candidate]:
    """One checked candidate per entry this tag updates, or one new entry.
    A new name taken by a different model is an ``ImporterError`` naming both."""
    fields = candidate_fields(tag, stored, registry, name)
    if artifacts is not None:
        fields["artifacts"] = artifacts
    entries = registry.entries
    label = f"Ollama model {shown_tag(tag)}"
    # The port as config says it, so backends.ollama.port moves the entry.
    raw: dict[tuple[str, ...], Any] = {
        ("backend_config", "port"): portable_port(registry.cfg, "ollama")
    }
    if not matches:
        if name in entries:
            raise ImporterError(
                f"{label}: its name {name!r} is already taken by a different model "
                f"(entry {name!r}: {describe(entries[name])})"
            )
        if name in claimed:
            raise ImporterError(
                f"{label}: its name {name!r} is also the name Ollama model "
                f"{shown_tag(claimed[name])} gets; two models cannot share a name"
            )
        claimed[name] = tag
        return [checked(Candidate("Ollama model", tag, name, fields, raw=raw))]
    fields.pop("display_name")  # each existing entry keeps its own
    out = []
    for match in matches:
        settled = _settled(fields, entries[match].model_dump())
        out.append(checked(Candidate("Ollama model", tag, name, settled, [match], raw=raw)))
    return out
