"""How an imported entry looks: the shape the real ImageWorks registry uses.

Capabilities are stored in the expanded form ImageWorks writes (every
canonical key, then every synonym carrying its canonical value), display
names are the logical name with spaces, and quantization labels are lower case.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..schema import CANONICAL_CAPABILITIES, CAPABILITY_SYNONYMS

# The stored capability form, key order as in the real registry: each
# canonical key's ImageWorks synonyms, in the schema's table order.
# ``thinking`` and ``reasoning`` share one list, so they always agree.
STORED_CAPABILITIES: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (canonical, tuple(s for s in CAPABILITY_SYNONYMS[canonical] if s not in CANONICAL_CAPABILITIES))
    for canonical in ("text", "vision", "audio", "embedding", "tools", "thinking")
)
_CANONICAL_ORDER = ("text", "vision", "embedding", "audio", "thinking", "reasoning", "tools")


def stored_capabilities(enabled: set[str]) -> dict[str, bool]:
    """The expanded capability map for a set of canonical capabilities."""
    flags = {key: key in enabled for key in _CANONICAL_ORDER}
    flags["thinking"] = flags["reasoning"] = flags["thinking"] or flags["reasoning"]
    out = dict(flags)
    for canonical, synonyms in STORED_CAPABILITIES:
        for synonym in synonyms:
            out.setdefault(synonym, flags[canonical])
    return out


def display_name(name: str) -> str:
    """``qwen3_8b_(Q4_K_M)`` -> ``qwen3 8b (Q4 K M)``, as ImageWorks shows it."""
    return name.replace("_", " ")


def entry_name(stem: str, quantization: str | None) -> str:
    """``<stem>_(<QUANT>)``, or the stem alone when the quantization is unknown."""
    return f"{stem}_({quantization.upper()})" if quantization else stem


def file_sha256(path: Path) -> str:
    """sha256 of one small file (a chat template), read whole."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields without ``None`` values, one level into dicts too (a new
    entry records what the source said, not every key it might have said)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None}
        if value is not None:
            out[key] = value
    return out
