"""The registry entry model (pydantic v2) and capability normalisation.

Every field seen in the real ImageWorks registry is declared; anything else is
kept as an extra and written back unchanged. Real files are full of ``null``,
so list and dict fields read ``null`` as empty.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

# Re-exported (``X as X``): the schema's public names.
from loader.registry.capabilities import CANONICAL_CAPABILITIES as CANONICAL_CAPABILITIES
from loader.registry.capabilities import CAPABILITY_SYNONYMS as CAPABILITY_SYNONYMS
from loader.registry.capabilities import canonical_capability as canonical_capability
from loader.registry.capabilities import canonical_only as canonical_only
from loader.registry.capabilities import capability_enabled as capability_enabled
from loader.registry.capabilities import capability_of as capability_of
from loader.registry.capabilities import clean_served_model_id as clean_served_model_id
from loader.registry.capabilities import normalize_capabilities as normalize_capabilities


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


_Model = TypeVar("_Model", bound=BaseModel)
# A nested part that reads ``null`` as empty: ``_Lenient[BackendConfig]``.
_Lenient = Annotated[_Model, BeforeValidator(_none_as_empty_dict)]


class RegistryEntry(_Part):
    """One model as the registry resolves it."""

    name: str
    display_name: str | None = None
    backend: str = "vllm"
    backend_config: _Lenient[BackendConfig] = Field(default_factory=BackendConfig)
    capabilities: AnyDict = Field(default_factory=dict)
    artifacts: _Lenient[Artifacts] = Field(default_factory=Artifacts)
    chat_template: _Lenient[ChatTemplate] = Field(default_factory=ChatTemplate)
    version_lock: _Lenient[VersionLock] = Field(default_factory=VersionLock)
    performance: _Lenient[Performance] = Field(default_factory=Performance)
    probes: _Lenient[Probes] = Field(default_factory=Probes)
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
