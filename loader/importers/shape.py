"""How an imported entry looks: the shape the real ImageWorks registry uses.

Capabilities are stored in the expanded form ImageWorks writes (every
canonical key, then every synonym carrying its canonical value), display
names are the logical name with spaces, and quantization labels are lower case.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loader.literal import escape
from loader.registry.schema import CANONICAL_CAPABILITIES, CAPABILITY_SYNONYMS

if TYPE_CHECKING:
    from loader.config import Config

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


# --- portable values: one registry shared by hosts with their own model roots ---

_CONFIG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def model_roots(cfg: Config) -> list[str]:
    """``paths.models`` as a list of folders (one, or several)."""
    return list(cfg.paths.model_roots)


def _relative_under(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` when it lies beneath it (as spelled, or
    once links are resolved), else None."""
    root = os.path.expanduser(root)
    for a, b in (
        (os.path.abspath(path), os.path.abspath(root)),
        (os.path.realpath(path), os.path.realpath(root)),
    ):
        if a != b and a.startswith(b.rstrip(os.sep) + os.sep):
            return os.path.relpath(a, b)
    return None


def relative_to_roots(cfg: Config, path: str) -> str | None:
    """The path of ``path`` relative to the model root it lies under: a
    model's identity across hosts, whose roots differ."""
    for root in model_roots(cfg):
        rel = _relative_under(path, root)
        if rel is not None:
            return rel
    return None


def portable_path(cfg: Config, path: str) -> str:
    """How an importer stores a local path: ``${paths.models}/REL`` when it lies
    under the (single) model root, so each host resolves it under its own root;
    otherwise the absolute path. The folder's own text is escaped
    (``literal.escape``): only the ``${paths.models}/`` prefix is an interpolation."""
    absolute = os.path.abspath(os.path.expanduser(path))
    roots = cfg.paths.models
    if isinstance(roots, str):
        rel = _relative_under(absolute, roots)
        if rel is not None:
            return "${paths.models}/" + escape(rel)
    return escape(absolute)


def portable_port(cfg: Config, backend: str) -> str | int:
    """``${backends.BACKEND.port}`` (or ``${backends.default.port}``) so that
    ``backends.vllm.port=…`` moves imported entries; a backend whose name is not
    a plain config key gets the port number itself."""
    backends = cfg.get("backends") or {}
    if backend in backends and _CONFIG_KEY.match(backend):
        return "${backends." + backend + ".port}"
    if backend not in backends and "default" in backends:
        return "${backends.default.port}"
    from loader.registry.service import backend_default_port

    return backend_default_port(cfg, backend)
