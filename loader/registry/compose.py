"""Composing layers into entries: precedence, overrides, interpolation, provenance.

Bulk merging is plain Python (OmegaConf on a whole registry is ~5,000x
slower); OmegaConf only resolves the few strings that contain ``${``.

Precedence per field, lowest first: schema defaults, discovered, curated for
static fields (``null`` in curated is "no opinion"), discovered for dynamic
fields, then per-invocation overrides. Dicts merge key by key; lists are
replaced whole. Merged data shares unchanged sub-objects with the layers, so
everything here that changes a value copies along its path.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loader.config import omegaconf_reason
from loader.errors import EntryValidationError, InterpolationError, OverrideError
from loader.registry import strictjson
from loader.registry.field_patterns import FieldPatterns

if TYPE_CHECKING:
    from loader.registry.layers import Layer
    from loader.registry.schema import RegistryEntry

# Bump when the merge rules change: snapshots stamped under older rules are
# then composed again instead of trusted.
RULES_VERSION = 1

CURATED = "curated"
DISCOVERED = "discovered"
DEFAULT = "default"
OVERRIDE = "override"

Path_ = tuple[str, ...]


# Top-level fields owned by tooling (``registry.dynamic_fields``).
DynamicFields = FieldPatterns


# --- merging ----------------------------------------------------------------


def merge_entry(
    curated: dict[str, Any] | None,
    discovered: dict[str, Any] | None,
    dynamic: DynamicFields,
    provenance: dict[Path_, str] | None = None,
) -> dict[str, Any]:
    """One entry from its curated and discovered copies (either may be None).

    Key order follows the discovered copy, then keys only curated has, which
    reproduces the ImageWorks loader's snapshot byte for byte.
    """
    if discovered is None or curated is None:
        only, layer = (curated, CURATED) if discovered is None else (discovered, DISCOVERED)
        if provenance is not None:
            for key in only:
                provenance[(key,)] = layer
        return dict(only)
    out: dict[str, Any] = {}
    for key, disc_value in discovered.items():
        if key in curated:
            out[key] = _merge_value(
                disc_value, curated[key], key not in dynamic, (key,), provenance
            )
        else:
            out[key] = disc_value
            _note(provenance, (key,), DISCOVERED)
    for key, cur_value in curated.items():
        if key not in discovered:
            out[key] = cur_value
            _note(provenance, (key,), CURATED)
    return out


def _merge_value(
    disc: Any, cur: Any, curated_wins: bool, path: Path_, provenance: dict[Path_, str] | None
) -> Any:
    if disc == cur:  # real discovered files repeat the curated copy; skip the walk
        _note(provenance, path, CURATED if curated_wins else DISCOVERED)
        return disc
    if not (isinstance(disc, dict) and isinstance(cur, dict)):
        if curated_wins and cur is not None:
            _note(provenance, path, CURATED)
            return cur
        _note(provenance, path, DISCOVERED)
        return disc
    out: dict[str, Any] = {}
    for key, disc_value in disc.items():
        if key not in cur:
            out[key] = disc_value
            _note(provenance, (*path, key), DISCOVERED)
            continue
        cur_value = cur[key]
        if provenance is None and not (type(disc_value) is dict and type(cur_value) is dict):
            # The common leaf case, inlined: this loop runs for every field.
            if curated_wins and cur_value is not None:
                out[key] = cur_value
            else:
                out[key] = disc_value
        else:
            out[key] = _merge_value(disc_value, cur_value, curated_wins, (*path, key), provenance)
    for key, cur_value in cur.items():
        if key not in disc:
            out[key] = cur_value
            _note(provenance, (*path, key), CURATED)
    return out


def _note(provenance: dict[Path_, str] | None, path: Path_, layer: str) -> None:
    if provenance is not None:
        provenance[path] = layer


def set_path(data: Any, path: Path_, value: Any) -> Any:
    """A copy of ``data`` with ``path`` set, copying only the containers on the
    path. A list step takes a numeric part; a missing step becomes a dict."""
    head, *rest = path
    if isinstance(data, list):
        out_list = list(data)
        index = int(head)
        out_list[index] = set_path(out_list[index], tuple(rest), value) if rest else value
        return out_list
    out = dict(data) if isinstance(data, dict) else {}
    if rest:
        child = out.get(head)
        child = child if isinstance(child, dict | list) else {}
        out[head] = set_path(child, tuple(rest), value)
    else:
        out[head] = value
    return out


def layer_of(provenance: dict[Path_, str], path: Path_) -> str:
    """The layer that decided ``path`` (the nearest recorded ancestor)."""
    for end in range(len(path), 0, -1):
        layer = provenance.get(path[:end])
        if layer is not None:
            return layer
    return DEFAULT


# --- per-invocation overrides -------------------------------------------------


@dataclass(frozen=True)
class EntryOverride:
    """``NAME.field.path=VALUE`` from the command line; never persisted."""

    text: str
    name: str
    path: Path_
    value: Any


def parse_entry_overrides(texts: Sequence[str], names: Iterable[str]) -> list[EntryOverride]:
    """Parse overrides, matching the longest entry name before a ``.``.

    Entry names contain dots and parentheses (``qwen2.5-vl-7b_(AWQ)``), so the
    name is whichever known name the key starts with, longest first.
    """
    by_length = sorted(names, key=len, reverse=True)
    parsed = []
    for text in texts:
        key, sep, raw_value = str(text).partition("=")
        if not sep or not key:
            raise OverrideError(f"override {text!r}: expected NAME.FIELD=VALUE")
        name = next((n for n in by_length if key.startswith(n + ".")), None)
        if name is None:
            raise OverrideError(
                f"override {text!r}: no entry name matches the start of {key!r} "
                "(expected NAME.FIELD=VALUE with a registry entry's NAME)"
            )
        path = tuple(key[len(name) + 1 :].split("."))
        if len(path) > strictjson.MAX_DEPTH:
            raise OverrideError(
                f"override for {name!r}: field path deeper than {strictjson.MAX_DEPTH} levels"
            )
        if any(not part for part in path) or path[0] == "name":
            raise OverrideError(f"override {text!r}: bad field path {'.'.join(path)!r}")
        parsed.append(EntryOverride(text, name, path, _parse_value(name, path, raw_value)))
    return parsed


def _parse_value(name: str, path: Path_, raw: str) -> Any:
    # JSON where it parses (numbers, true/false/null, lists, objects), else text.
    try:
        return strictjson.loads(raw)
    except json.JSONDecodeError:
        return raw
    except strictjson.StrictJsonError as exc:
        where = ".".join((*path, *exc.where))
        raise OverrideError(f"override for {name!r}: {where}: value {exc.problem}") from None


# --- interpolation ---------------------------------------------------------------


def iter_interpolated(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
    """Every string holding ``${`` inside ``data``, with its path."""
    if isinstance(data, str):
        if "${" in data:
            yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from iter_interpolated(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from iter_interpolated(value, (*path, str(index)))


class Interpolator:
    """Resolves entry strings against the composed config with OmegaConf."""

    _SLOT = "__entry_value__"

    def __init__(self, raw_config: dict[str, Any]) -> None:
        from omegaconf import OmegaConf

        # A private copy: the slot written below must not leak into the config.
        self._cfg = OmegaConf.create(raw_config)
        OmegaConf.set_struct(self._cfg, False)

    def resolve(self, text: str) -> Any:
        from omegaconf.errors import OmegaConfBaseException

        try:
            # Assigning parses the text: an unterminated ``${`` fails here.
            self._cfg[self._SLOT] = text
            return self._cfg[self._SLOT]
        except OmegaConfBaseException as exc:
            raise ValueError(omegaconf_reason(exc)) from None


# --- composing a registry ---------------------------------------------------------


@dataclass
class Composed:
    """The merged registry, before validation, and where each part came from."""

    order: list[str]
    merged: dict[str, dict[str, Any]]
    interpolated: dict[str, dict[Path_, str]] = field(default_factory=dict)
    overridden: dict[str, dict[Path_, str]] = field(default_factory=dict)


@dataclass
class Sources:
    """The two layers a registry is composed from."""

    curated: Layer
    discovered: Layer

    def locate(self, name: str, layer: str) -> str:
        """``FILE: entry 'NAME' (index I)`` for the layer that holds the entry."""
        if layer == CURATED:
            chosen = self.curated
        elif layer == DISCOVERED or self.find(self.discovered, name) is not None:
            chosen = self.discovered  # a default or override: name the entry's file
        else:
            chosen = self.curated
        index = self.find(chosen, name)
        where = f" (index {index})" if index is not None else ""
        return f"{chosen.path}: entry {name!r}{where}"

    @staticmethod
    def find(layer: Layer, name: str) -> int | None:
        for index, entry in enumerate(layer.entries):
            if entry.get("name") == name:
                return index
        return None

    def provenance(self, name: str, dynamic: DynamicFields) -> dict[Path_, str]:
        prov: dict[Path_, str] = {}
        cur, disc = self.find(self.curated, name), self.find(self.discovered, name)
        merge_entry(
            None if cur is None else self.curated.entries[cur],
            None if disc is None else self.discovered.entries[disc],
            dynamic,
            prov,
        )
        return prov


def compose(
    sources: Sources,
    dynamic: DynamicFields,
    overrides: Sequence[EntryOverride] = (),
    interpolator: Interpolator | None = None,
) -> Composed:
    """Merge both layers, apply overrides, resolve ``${...}`` values."""
    curated = {e["name"]: e for e in sources.curated.entries}
    discovered = {e["name"]: e for e in sources.discovered.entries}
    order = list(discovered) + [n for n in curated if n not in discovered]
    merged = {n: merge_entry(curated.get(n), discovered.get(n), dynamic) for n in order}
    result = Composed(order=order, merged=merged)
    for override in overrides:
        merged[override.name] = set_path(merged[override.name], override.path, override.value)
        result.overridden.setdefault(override.name, {})[override.path] = override.text
    if interpolator is not None:
        _resolve_all(result, sources, dynamic, interpolator)
    return result


def _resolve_all(
    result: Composed, sources: Sources, dynamic: DynamicFields, interpolator: Interpolator
) -> None:
    for name in result.order:
        entry = result.merged[name]
        # A name is an identity, never interpolated (layers refuse ``${`` in one).
        found = [(p, t) for p, t in iter_interpolated(entry) if p != ("name",)]
        if not found:
            continue
        for path, text in found:
            try:
                value = interpolator.resolve(text)
            except ValueError as exc:
                where = _where(result, sources, dynamic, name, path)
                raise InterpolationError(
                    f"{where}: {'.'.join(path)}: interpolation {text!r}: {exc}"
                ) from None
            entry = set_path(entry, path, value)
            result.interpolated.setdefault(name, {})[path] = text
        result.merged[name] = entry


def _where(
    result: Composed, sources: Sources, dynamic: DynamicFields, name: str, path: Path_
) -> str:
    overridden = result.overridden.get(name, {})
    for end in range(len(path), 0, -1):
        if path[:end] in overridden:
            return f"override {overridden[path[:end]]!r}: entry {name!r}"
    layer = layer_of(sources.provenance(name, dynamic), path)
    return sources.locate(name, layer)


# --- validation -------------------------------------------------------------------

_ERROR_WORDS = {
    "int_parsing": "not an integer",
    "int_type": "not an integer",
    "int_from_float": "not an integer",
    "float_parsing": "not a number",
    "float_type": "not a number",
    "finite_number": "not a finite number",
    "bool_parsing": "not a boolean",
    "bool_type": "not a boolean",
    "string_type": "not a string",
    "list_type": "not a list",
    "dict_type": "not an object",
    "model_type": "not an object",
    "model_attributes_type": "not an object",
    "missing": "missing",
}


def validate(
    result: Composed, sources: Sources, dynamic: DynamicFields
) -> dict[str, RegistryEntry]:
    """Validate every merged entry; the first bad field is reported precisely."""
    from pydantic import ValidationError

    from loader.registry.schema import RegistryEntry

    entries: dict[str, RegistryEntry] = {}
    _warn_zero_ports(result, sources, dynamic)
    for name in result.order:
        try:
            entries[name] = RegistryEntry.model_validate(result.merged[name])
        except ValidationError as exc:
            error = exc.errors()[0]
            path = tuple(str(part) for part in error["loc"])
            words = _ERROR_WORDS.get(error["type"], error["msg"].lower())
            shown = "" if error["type"] == "missing" else f": {_show(error.get('input'))}"
            where = _where(result, sources, dynamic, name, path)
            raise EntryValidationError(
                f"{where}: {_dotted(error['loc'])}: {words}{shown}"
            ) from None
    return entries


def _warn_zero_ports(result: Composed, sources: Sources, dynamic: DynamicFields) -> None:
    """One line naming the entries whose ``backend_config.port`` is ``0``: ImageWorks
    writes it for "no port", and the backend's default port is used instead."""
    zero = []
    for name in result.order:
        config = result.merged[name].get("backend_config")
        port = config.get("port") if isinstance(config, dict) else None
        if port == 0 and not isinstance(port, bool):
            zero.append(name)
    if not zero:
        return
    where = _where(result, sources, dynamic, zero[0], ("backend_config", "port"))
    more = f" (also {', '.join(repr(n) for n in zero[1:])})" if zero[1:] else ""
    print(
        f"warning: {where}: backend_config.port: 0 means no port, so the backend's default "
        f"port is used (as ImageWorks reads it){more}",
        file=sys.stderr,
    )


def _dotted(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
