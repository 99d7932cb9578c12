"""Checking what an Ollama server says, model by model, before anything is kept.

Ollama is a server people may not control: every field an import records is
checked here, at the door. A model with a bad field is a ``BadModel`` naming
the tag and the field; the import records the good models and names each bad
one. Text is checked for what cannot be stored or shown on one line (NUL and
other control characters, lone surrogates); numbers for the range a real model
can have; digests for their shape. The facts returned hold text exactly as
received: storing it literally (``loader.literal``) is the importer's job.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Longest text a field may hold; names and tags are far shorter in practice.
MAX_TAG_CHARS = 200
MAX_TEXT_CHARS = 512
# A context or embedding length no real model exceeds (a billion tokens).
MAX_LENGTH = 1_000_000_000
# download_size_bytes: 2^53 stays exact in every JSON reader.
MAX_SIZE = 2**53

_DIGEST = re.compile(r"(?:sha256[:-])?[0-9a-f]{64}")
_QUANTIZATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,31}")

# Ollama's capability words -> canonical capabilities.
CAPABILITIES = {
    "completion": "text",
    "vision": "vision",
    "tools": "tools",
    "thinking": "thinking",
    "embedding": "embedding",
}


class BadModel(Exception):
    """One model's data cannot be recorded; the message says which field and why."""

    def __init__(self, tag: str, problem: str) -> None:
        super().__init__(f"Ollama model {shown_tag(tag)}: {problem}")
        self.tag = tag


def shown_tag(tag: Any) -> str:
    """A tag as one printable line, whatever it holds (``repr`` escapes
    control characters and lone surrogates)."""
    text = repr(tag)
    return text if len(text) <= MAX_TAG_CHARS + 20 else text[:MAX_TAG_CHARS] + "…'"


def text_problem(value: str, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """Why ``value`` cannot be stored as one field of text, or None."""
    if len(value) > max_chars:
        return f"longer than {max_chars} characters"
    for char in value:
        if 0xD800 <= ord(char) <= 0xDFFF:
            return f"holds a lone surrogate (U+{ord(char):04X})"
        if unicodedata.category(char) == "Cc":
            return f"holds a control character (U+{ord(char):04X})"
    return None


def _text(
    tag: str, endpoint: str, where: str, value: Any, max_chars: int = MAX_TEXT_CHARS
) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadModel(tag, f"malformed {endpoint} payload: {where} is not text")
    problem = text_problem(value, max_chars)
    if problem:
        raise BadModel(tag, f"malformed {endpoint} payload: {where} {problem}")
    return value


def _whole(tag: str, endpoint: str, where: str, value: Any, low: int, high: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadModel(tag, f"malformed {endpoint} payload: {where} is not a whole number")
    if not low <= value <= high:
        digits = str(value)
        shown = digits if len(digits) <= 24 else f"{digits[:20]}… ({len(digits)} digits)"
        raise BadModel(
            tag, f"malformed {endpoint} payload: {where} {shown} is outside {low}..{high:,}"
        )
    return value


def tag_of(item: Any) -> str:
    """The tag of one ``/api/tags`` item, checked: a ``BadModel`` otherwise.
    A tag is an identity: it names the entry, so ``${`` is refused rather
    than escaped (names are never interpolated)."""
    tag = (item.get("model") or item.get("name")) if isinstance(item, dict) else None
    if not isinstance(tag, str) or not tag.strip():
        raise BadModel(
            "?", f"malformed /api/tags payload: a model without a name: {shown_tag(item)}"
        )
    problem = text_problem(tag, MAX_TAG_CHARS)
    if problem:
        raise BadModel(tag, f"malformed /api/tags payload: the tag {problem}")
    if tag != tag.strip() or any(c.isspace() for c in tag):
        raise BadModel(tag, "malformed /api/tags payload: the tag holds white space")
    if "${" in tag:
        raise BadModel(
            tag, "the tag holds '${', which a registry name may not hold (names are identities)"
        )
    return tag


def model_facts(tag: str, listed: dict[str, Any], shown: Any) -> dict[str, Any]:
    """The values an entry records, each checked; raises ``BadModel``."""
    if not isinstance(shown, dict):
        raise BadModel(tag, "malformed /api/show payload: not an object")
    details = listed.get("details")
    endpoint = "/api/tags"
    if not details:
        details, endpoint = shown.get("details") or {}, "/api/show"
    if not isinstance(details, dict):
        raise BadModel(tag, f"malformed {endpoint} payload: 'details' is not an object")
    facts_details = {
        key: _text(tag, endpoint, f"details.{key}", details.get(key))
        for key in ("family", "parameter_size", "quantization_level", "format")
    }
    quantization = facts_details["quantization_level"]
    if quantization is not None and not _QUANTIZATION.fullmatch(quantization):
        raise BadModel(
            tag,
            f"malformed {endpoint} payload: details.quantization_level {quantization!r} is not "
            "a quantization label (letters, digits, '_', '.', '-', at most 32)",
        )
    size = _whole(tag, "/api/tags", "size", listed.get("size"), 0, MAX_SIZE)
    digest = _text(tag, "/api/tags", "digest", listed.get("digest"), 80)
    if digest is not None and digest != "" and not _DIGEST.fullmatch(digest):
        raise BadModel(
            tag, f"malformed /api/tags payload: digest {digest!r} is not a sha256 hex digest"
        )
    capabilities = shown.get("capabilities") or []
    if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
        raise BadModel(tag, "malformed /api/show payload: 'capabilities' is not a list of words")
    if len(capabilities) > 64:
        raise BadModel(tag, "malformed /api/show payload: more than 64 capabilities")
    for word in capabilities:
        _text(tag, "/api/show", "a capability", word, 64)
    info = shown.get("model_info") or {}
    if not isinstance(info, dict):
        raise BadModel(tag, "malformed /api/show payload: 'model_info' is not an object")
    architecture = _text(
        tag, "/api/show", "model_info general.architecture", info.get("general.architecture"), 128
    )
    lengths = {}
    for key in ("context_length", "embedding_length"):
        value = info.get(f"{architecture}.{key}") if architecture else None
        where = f"model_info {architecture}.{key}"
        lengths[key] = _whole(tag, "/api/show", where, value, 1, MAX_LENGTH)
    modified = listed.get("modified_at")
    if not isinstance(modified, str):
        modified = None
    modified = _text(tag, "/api/tags", "modified_at", modified, 64)
    template = shown.get("template")
    return {
        "details": facts_details,
        "size": size,
        "digest": digest or None,
        "modified_at": modified,
        "capabilities": list(capabilities),
        "architecture": architecture,
        "context_length": lengths["context_length"],
        "embedding_length": lengths["embedding_length"],
        "has_template": isinstance(template, str) and bool(template.strip()),
    }
