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

_NOT_A_PORT = "not a port number (an integer 1-65535)"


def _no_bool_port(value: Any) -> Any:
    # pydantic reads ``true`` as 1; a port is never a boolean.
    if isinstance(value, bool):
        raise PydanticCustomError("port", _NOT_A_PORT)
    return value


def _port_in_range(value: int | None) -> int | None:
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

# Synonyms seen in real registry files, folded into the canonical keys.
CAPABILITY_SYNONYMS: dict[str, tuple[str, ...]] = {
    "text": ("language", "chat", "completion", "generate"),
    "vision": ("visual", "multimodal", "mm", "image", "images", "vl", "vlm"),
    "audio": ("speech", "voice", "asr", "tts"),
    "embedding": ("embed", "embeddings", "text-embedding", "representation"),
    "tools": (
        "tool",
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
    "thinking": ("think", "chain_of_thought", "cot"),
    "reasoning": ("reason", "reasoner", "o1", "o3", "r1", "deepseek"),
}

_CANONICAL_OF = {
    synonym: canonical
    for canonical, synonyms in CAPABILITY_SYNONYMS.items()
    for synonym in synonyms
}
_CANONICAL_KEY = {**_CANONICAL_OF, **{c: c for c in CANONICAL_CAPABILITIES}}


def capability_enabled(value: Any) -> bool:
    """A capability value as a bool; a dict counts by its ``enabled`` key."""
    if isinstance(value, dict):
        return bool(value.get("enabled", False))
    return bool(value)


def normalize_capabilities(raw: dict[str, Any] | None) -> dict[str, bool]:
    """Fold a stored capability map into the canonical keys.

    A canonical key, when present, decides for itself; otherwise any true
    synonym turns the capability on.
    """
    result = dict.fromkeys(CANONICAL_CAPABILITIES, False)
    explicit: set[str] = set()
    from_synonyms: set[str] = set()
    for key, value in (raw or {}).items():
        canonical = _CANONICAL_KEY.get(key) or _CANONICAL_KEY.get(key.lower())
        if canonical is None:
            continue
        if canonical == key.lower():
            result[canonical] = capability_enabled(value)
            explicit.add(canonical)
        elif capability_enabled(value):
            from_synonyms.add(canonical)
    for canonical in from_synonyms - explicit:
        result[canonical] = True
    return result


def capability_of(raw: dict[str, Any] | None, name: str) -> bool:
    """Same answer as ``normalize_capabilities(raw)[canonical]``, cheaper."""
    canonical = canonical_capability(name)
    if canonical is None or not raw:
        return False
    if canonical in raw:
        return capability_enabled(raw[canonical])
    for key, value in raw.items():
        lowered = key.lower()
        if lowered == canonical:
            return capability_enabled(value)
    return any(
        _CANONICAL_OF.get(key.lower()) == canonical and capability_enabled(value)
        for key, value in raw.items()
    )


def canonical_capability(name: str) -> str | None:
    """The canonical key for a capability name or synonym, or None."""
    lowered = name.lower()
    if lowered in CAPABILITY_SYNONYMS:
        return lowered
    return _CANONICAL_OF.get(lowered)
