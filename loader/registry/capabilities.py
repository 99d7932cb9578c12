"""Capability names and their normalisation, and the served-id repair: plain
functions over plain data (no pydantic), shared by the entry model and by
the read path that serves a confirmed snapshot as plain data."""

from __future__ import annotations

from typing import Any

# Served-model ids that an old ImageWorks bug wrote for "no value".
_ABSENT_IDS = {"none", "null", ""}


def clean_served_model_id(value: str | None) -> str | None:
    if value is None or value.strip().lower() in _ABSENT_IDS:
        return None
    return value


CANONICAL_CAPABILITIES = ("text", "vision", "audio", "embedding", "tools", "thinking", "reasoning")

# The ImageWorks loader's synonym table (each list includes its canonical key).
# ``thinking`` and ``reasoning`` share one list, so they always agree.
_THINKING = (
    "thinking",
    "reasoning",
    "reason",
    "think",
    "chain_of_thought",
    "cot",
    "reasoner",
    "o1",
    "o3",
    "r1",
    "deepseek",
)
CAPABILITY_SYNONYMS: dict[str, tuple[str, ...]] = {
    "text": ("text", "language", "chat"),
    "vision": ("vision", "visual", "multimodal", "mm", "image", "vl"),
    "audio": ("audio", "speech", "voice", "asr", "tts"),
    "embedding": ("embedding", "embed", "text-embedding", "representation"),
    "tools": (
        "tools",
        "tool_use",
        "tool-use",
        "tool_call",
        "tool-call",
        "toolcalls",
        "tool_calls",
        "toolchoice",
        "tool_choice",
        "function_call",
        "function-call",
        "function_calls",
        "function_calling",
        "function-calling",
        "function_tools",
        "functioncalling",
        "toolcalling",
        "auto_tool_choice",
    ),
    "thinking": _THINKING,
    "reasoning": _THINKING,
}

# A capability "group": the keys that answer for one capability. thinking and
# reasoning are one group; its canonical keys are both.
_GROUP_OF = {
    synonym: ("thinking" if canonical == "reasoning" else canonical)
    for canonical, synonyms in CAPABILITY_SYNONYMS.items()
    for synonym in synonyms
}
_CANONICAL_KEYS = {
    group: tuple(c for c in CANONICAL_CAPABILITIES if _GROUP_OF[c] == group)
    for group in set(_GROUP_OF.values())
}
_DEFAULT_ON = {"text"}


def capability_enabled(value: Any) -> bool:
    """A capability value as a bool; a dict counts by its ``enabled`` key."""
    if isinstance(value, dict):
        return bool(value.get("enabled", False))
    return bool(value)


def _group_values(raw: dict[str, Any] | None) -> dict[str, bool]:
    """Each capability group's value: an explicit canonical key decides for
    itself (curated ``vision: false`` wins over ``vl: true``); otherwise any
    true synonym turns it on; ``text`` defaults to on."""
    explicit: dict[str, bool] = {}
    from_synonyms: dict[str, bool] = {}
    for key, value in (raw or {}).items():
        lowered = key.lower()
        group = _GROUP_OF.get(lowered)
        if group is None:
            continue
        enabled = capability_enabled(value)
        target = explicit if lowered in _CANONICAL_KEYS[group] else from_synonyms
        target[group] = target.get(group, False) or enabled
    values = {}
    for group in _CANONICAL_KEYS:
        if group in explicit:
            values[group] = explicit[group]
        elif group in from_synonyms:
            values[group] = from_synonyms[group]
        else:
            values[group] = group in _DEFAULT_ON
    return values


def normalize_capabilities(raw: dict[str, Any] | None) -> dict[str, bool]:
    """The ImageWorks loader's normalised map: the seven canonical keys first,
    then every synonym key with its capability's value, then any other key
    of ``raw`` (lower-cased) as a bool.
    """
    values = _group_values(raw)
    result = {key: values[_GROUP_OF[key]] for key in CANONICAL_CAPABILITIES}
    for synonyms in CAPABILITY_SYNONYMS.values():
        for synonym in synonyms:
            result.setdefault(synonym, values[_GROUP_OF[synonym]])
    for key, value in (raw or {}).items():
        result.setdefault(key.lower(), capability_enabled(value))
    return result


def canonical_only(capabilities: dict[str, bool]) -> dict[str, bool]:
    """The seven canonical keys of a normalised map (for human-facing output)."""
    return {key: capabilities[key] for key in CANONICAL_CAPABILITIES}


def capability_of(raw: dict[str, Any] | None, name: str) -> bool:
    """Same answer as ``normalize_capabilities(raw)[name]`` for any synonym."""
    group = _GROUP_OF.get(name.lower())
    if group is None:
        return False
    explicit = None
    synonym = False
    canonical = _CANONICAL_KEYS[group]
    for key, value in (raw or {}).items():
        lowered = key.lower()
        if _GROUP_OF.get(lowered) != group:
            continue
        if lowered in canonical:
            explicit = bool(explicit) or capability_enabled(value)
        elif capability_enabled(value):
            synonym = True
    if explicit is not None:
        return explicit
    return synonym or group in _DEFAULT_ON


def canonical_capability(name: str) -> str | None:
    """The canonical key for a capability name or synonym, or None
    (``thinking`` and ``reasoning`` name themselves; their synonyms give ``thinking``)."""
    lowered = name.lower()
    if lowered in CANONICAL_CAPABILITIES:
        return lowered
    return _GROUP_OF.get(lowered)
