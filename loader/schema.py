"""The registry entry model (pydantic v2) and capability normalisation.

Every field seen in the real ImageWorks registry is declared; anything else is
kept as an extra and written back unchanged. Real files are full of ``null``,
so list and dict fields read ``null`` as empty.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError


def _none_as_empty_list(value: Any) -> Any:
    return [] if value is None else value


def _none_as_empty_dict(value: Any) -> Any:
    return {} if value is None else value


StrList = Annotated[list[str], BeforeValidator(_none_as_empty_list)]
AnyList = Annotated[list[Any], BeforeValidator(_none_as_empty_list)]
AnyDict = Annotated[dict[str, Any], BeforeValidator(_none_as_empty_dict)]

_NOT_A_PORT = "not a port number (an integer 1-65535, or 0 for the backend's default)"


def _no_bool_port(value: Any) -> Any:
    # pydantic reads ``true`` as 1; a port is never a boolean.
    if isinstance(value, bool):
        raise PydanticCustomError("port", _NOT_A_PORT)
    return value


def _port_in_range(value: int | None) -> int | None:
    if value == 0:
        # ImageWorks' discover-local-hf writes 0 for "not served yet"; its
        # loader, like this one, then uses the backend's default port.
        return None
    if value is not None and not 1 <= value <= 65535:
        raise PydanticCustomError("port", _NOT_A_PORT)
    return value


Port = Annotated[int | None, BeforeValidator(_no_bool_port), AfterValidator(_port_in_range)]


class _Part(BaseModel):
    # No NaN or Infinity: strict JSON readers reject them in the snapshot.
    model_config = ConfigDict(extra="allow", validate_assignment=True, allow_inf_nan=False)


class BackendConfig(_Part):
    port: Port = None
    model_path: str | None = None
    extra_args: StrList = Field(default_factory=list)
    host: str | None = None
    base_url: str | None = None


class ArtifactFile(_Part):
    path: str
    sha256: str


class Artifacts(_Part):
    aggregate_sha256: str | None = ""
    files: Annotated[list[ArtifactFile], BeforeValidator(_none_as_empty_list)] = Field(
        default_factory=list
    )


class ChatTemplate(_Part):
    source: str | None = None
    path: str | None = None
    sha256: str | None = None


class VersionLock(_Part):
    locked: bool = False
    expected_aggregate_sha256: str | None = None
    last_verified: str | None = None


class Performance(_Part):
    rolling_samples: int = 0
    ttft_ms_avg: float | None = None
    throughput_toks_per_s_avg: float | None = None
    last_sample: Any = None


class Probes(_Part):
    vision: Any = None


def _parts(cls: type[BaseModel]):
    return Annotated[cls, BeforeValidator(_none_as_empty_dict)]


class RegistryEntry(_Part):
    """One model as the registry resolves it."""

    name: str
    display_name: str | None = None
    backend: str = "vllm"
    backend_config: _parts(BackendConfig) = Field(default_factory=BackendConfig)
    capabilities: AnyDict = Field(default_factory=dict)
    artifacts: _parts(Artifacts) = Field(default_factory=Artifacts)
    chat_template: _parts(ChatTemplate) = Field(default_factory=ChatTemplate)
    version_lock: _parts(VersionLock) = Field(default_factory=VersionLock)
    performance: _parts(Performance) = Field(default_factory=Performance)
    probes: _parts(Probes) = Field(default_factory=Probes)
    generation_defaults: AnyDict = Field(default_factory=dict)
    served_model_id: str | None = None
    model_aliases: StrList = Field(default_factory=list)
    roles: StrList = Field(default_factory=list)
    role_priority: Annotated[dict[str, int], BeforeValidator(_none_as_empty_dict)] = Field(
        default_factory=dict
    )
    license: Any = None
    source: Any = None
    deprecated: bool = False
    family: str | None = None
    source_provider: str | None = None
    quantization: str | None = None
    backend_alternatives: AnyList = Field(default_factory=list)
    download_format: str | None = None
    download_location: str | None = None
    download_path: str | None = None
    download_size_bytes: int | None = None
    download_files: StrList = Field(default_factory=list)
    download_directory_checksum: str | None = None
    downloaded_at: str | None = None
    last_accessed: str | None = None
    metadata: AnyDict = Field(default_factory=dict)
    profiles_placeholder: Any = None

    @property
    def served_id(self) -> str | None:
        """``served_model_id`` with the old ``"None"`` string bug repaired."""
        return clean_served_model_id(self.served_model_id)

    def normalized_capabilities(self) -> dict[str, bool]:
        return normalize_capabilities(self.capabilities)

    def has_capability(self, name: str) -> bool:
        """One canonical capability (or synonym), without folding the whole map."""
        return capability_of(self.capabilities, name)

    def locked(self) -> bool:
        return bool(self.version_lock.locked)


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
