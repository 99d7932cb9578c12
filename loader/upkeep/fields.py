"""``set``, ``unset``, ``promote`` and ``demote``: persistent, checked edits of
one entry's fields in a chosen layer (see docs/health.md).

Values are parsed as ``--set`` parses them (JSON where it parses, else text),
the field must be one the schema declares, the value must have its type, and a
dynamic field (``registry.dynamic_fields``) never goes into the curated layer.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from loader import strictjson
from loader.errors import OverrideError, UnknownModelError
from loader.registry.compose import CURATED, DISCOVERED, Sources, parse_value
from loader.registry.core import Registry, unknown_message
from loader.registry.schema import RegistryEntry
from loader.upkeep.layer_edit import (
    EditResult,
    Entries,
    Path_,
    drop,
    edit_layers,
    holds,
    layer_entry,
    put,
    validate_partial,
    value_at,
)

LAYERS = (CURATED, DISCOVERED)


def field_path(text: str, name: str) -> Path_:
    """``backend_config.port`` as a path, checked against the schema: each
    part must be a declared field until a free-form object (capabilities,
    metadata, generation_defaults, role_priority) is reached."""
    path = tuple(str(text).split("."))
    if any(not part for part in path) or len(path) > strictjson.MAX_DEPTH:
        raise OverrideError(f"entry {name!r}: bad field path {text!r}")
    if path[0] == "name":
        raise OverrideError(f"entry {name!r}: name: a name is an identity, not an editable field")
    model: type[BaseModel] = RegistryEntry
    for index, part in enumerate(path):
        fields = model.model_fields
        if part not in fields:
            where = ".".join(path[:index]) or "an entry"
            known = ", ".join(sorted(k for k in fields if k != "name"))
            raise OverrideError(
                f"entry {name!r}: {text}: unknown field {part!r} of {where} (known: {known})"
            )
        annotation = fields[part].annotation
        rest = path[index + 1 :]
        if not rest:
            return path
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        if typing.get_origin(annotation) is dict:
            return path  # a free-form object: any key below it
        raise OverrideError(
            f"entry {name!r}: {text}: {'.'.join(path[: index + 1])} is not an object"
        )
    return path


def layer_names(registry: Registry) -> set[str]:
    """The names either layer file holds now. The edits read the files, not
    the composed registry, so a registry that fails to load (a wrong type
    in one field) can still be repaired with ``set``."""
    sources = registry.read_sources()
    return {e["name"] for e in (*sources.curated.entries, *sources.discovered.entries)}


def require_entry(registry: Registry, name: str) -> None:
    names = layer_names(registry)
    if name not in names:
        raise UnknownModelError(unknown_message(name, names, registry.layer_files().folder))


def _check_layer(layer: str | None) -> str:
    layer = layer or CURATED
    if layer not in LAYERS:
        raise OverrideError(f"--layer: expected curated or discovered, got {layer!r}")
    return layer


def _assignments(name: str, words: Sequence[str]) -> list[tuple[Path_, Any]]:
    parsed = []
    for word in words:
        key, sep, raw = str(word).partition("=")
        if not sep or not key:
            raise OverrideError(f"set {name!r}: expected FIELD=VALUE, got {word!r}")
        path = field_path(key, name)
        parsed.append((path, parse_value(name, path, raw)))
    return parsed


def _refuse_dynamic(registry: Registry, name: str, path: Path_, hint: str) -> None:
    if path[0] in registry.dynamic:
        raise OverrideError(
            f"entry {name!r}: {'.'.join(path)}: a dynamic field (registry.dynamic_fields) is "
            f"owned by tooling and never goes into the curated layer; {hint}"
        )


def _changes(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    paths: Sequence[tuple[str, ...]],
) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(p), "before": value_at(before, p), "after": value_at(after, p)}
        for p in paths
    ]


def set_fields(
    registry: Registry,
    name: str,
    assignments: Sequence[str],
    layer: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Set FIELD=VALUE in one layer's entry (a new NAME makes a new entry,
    which needs ``backend``)."""
    layer = _check_layer(layer)
    if not assignments:
        raise OverrideError(f"set {name!r}: give at least one FIELD=VALUE")
    parsed = _assignments(name, assignments)
    if layer == CURATED:
        for path, _ in parsed:
            _refuse_dynamic(registry, name, path, "use --layer discovered")
    given = {".".join(p) for p, _ in parsed}
    if name not in layer_names(registry) and "backend" not in given:
        raise OverrideError(
            f"set {name!r}: no such entry; a new entry needs its backend "
            f"(set {name!r} backend=vllm ...)"
        )
    record: dict[str, Any] = {}

    def mutate(copies: dict[str, Entries]) -> None:
        target = copies[layer]
        entry = layer_entry(target, name)
        record["before"] = None if entry is None else _copy(entry)
        if entry is None:
            entry = {"name": name}
            target.append(entry)
        for path, value in parsed:
            put(entry, path, value)
        record["after"] = entry

    def check(sources: Sources) -> None:
        fields: dict[str, Any] = {}
        for path, value in parsed:
            put(fields, path, value)
        validate_partial(sources, registry, layer, name, fields)

    result = edit_layers(registry, mutate, layers=(layer,), dry_run=dry_run, check=check)
    return {
        "name": name,
        "layer": layer,
        "created": record["before"] is None,
        "changes": _changes(record["before"], record["after"], [p for p, _ in parsed]),
        **_outcome(result, dry_run),
    }


def unset_fields(
    registry: Registry,
    name: str,
    fields: Sequence[str],
    layer: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Remove fields from one layer's entry (the other layer's value, or the
    default, then shows)."""
    layer = _check_layer(layer)
    if not fields:
        raise OverrideError(f"unset {name!r}: give at least one FIELD")
    require_entry(registry, name)
    paths = [field_path(f, name) for f in fields]
    record: dict[str, Any] = {}

    def mutate(copies: dict[str, Entries]) -> None:
        entry = layer_entry(copies[layer], name)
        for path in paths:
            if entry is None or not holds(entry, path):
                raise OverrideError(
                    f"entry {name!r}: {'.'.join(path)}: the {layer} layer does not hold it"
                )
        if entry is None:  # no field named (the parser requires one)
            raise OverrideError(f"entry {name!r}: the {layer} layer does not hold it")
        record["before"] = _copy(entry)
        for path in paths:
            drop(entry, path)
        record["after"] = entry

    result = edit_layers(registry, mutate, layers=(layer,), dry_run=dry_run)
    return {
        "name": name,
        "layer": layer,
        "changes": _changes(record["before"], record["after"], paths),
        **_outcome(result, dry_run),
    }


def promote(
    registry: Registry, name: str, fields: Sequence[str] = (), dry_run: bool = False
) -> dict[str, Any]:
    """Pin discovered values into the curated layer (no FIELD: every static
    field discovered holds and curated does not)."""
    require_entry(registry, name)
    paths = [field_path(f, name) for f in fields]
    for path in paths:
        _refuse_dynamic(registry, name, path, "promote pins static fields")
    moved: list[Path_] = []

    def mutate(copies: dict[str, Entries]) -> None:
        moved.clear()  # the edit is tried once, then redone under the lock
        disc = layer_entry(copies[DISCOVERED], name) or {}
        cur = layer_entry(copies[CURATED], name)
        chosen = paths or [
            (key,)
            for key, value in disc.items()
            if key != "name"
            and key not in registry.dynamic
            and value is not None
            and value_at(cur, (key,)) is None
        ]
        for path in chosen:
            if value_at(disc, path) is None:
                raise OverrideError(
                    f"entry {name!r}: {'.'.join(path)}: the discovered layer does not hold it; "
                    "nothing to promote"
                )
        if not chosen:
            return
        if cur is None:
            cur = {"name": name}
            copies[CURATED].append(cur)
        for path in chosen:
            put(cur, path, _copy(value_at(disc, path)))
            moved.append(path)

    result = edit_layers(registry, mutate, dry_run=dry_run)
    return {
        "name": name,
        "promoted": [".".join(p) for p in moved],
        **_outcome(result, dry_run),
    }


def demote(
    registry: Registry, name: str, fields: Sequence[str] = (), dry_run: bool = False
) -> dict[str, Any]:
    """Unpin curated static values: remove them from the curated layer, moving
    each into the discovered layer where that holds no value of its own."""
    require_entry(registry, name)
    paths = [field_path(f, name) for f in fields]
    for path in paths:
        if path[0] in registry.dynamic:
            raise OverrideError(
                f"entry {name!r}: {'.'.join(path)}: a dynamic field; demote moves static fields"
            )
    moved: list[Path_] = []

    def mutate(copies: dict[str, Entries]) -> None:
        moved.clear()  # the edit is tried once, then redone under the lock
        cur = layer_entry(copies[CURATED], name)
        chosen = paths or [
            (key,)
            for key, value in (cur or {}).items()
            if key != "name" and key not in registry.dynamic and value is not None
        ]
        for path in chosen:
            if value_at(cur, path) is None:
                raise OverrideError(
                    f"entry {name!r}: {'.'.join(path)}: the curated layer does not hold it; "
                    "nothing to demote"
                )
        if not chosen or cur is None:  # (every chosen path is held by cur)
            return
        disc = layer_entry(copies[DISCOVERED], name)
        if disc is None:
            disc = {"name": name}
            copies[DISCOVERED].append(disc)
        for path in chosen:
            if value_at(disc, path) is None:
                put(disc, path, _copy(value_at(cur, path)))
            drop(cur, path)
            moved.append(path)
        if cur is not None and set(cur) == {"name"}:
            copies[CURATED].remove(cur)

    result = edit_layers(registry, mutate, dry_run=dry_run)
    return {
        "name": name,
        "demoted": [".".join(p) for p in moved],
        **_outcome(result, dry_run),
    }


def _copy(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value))


def _outcome(result: EditResult, dry_run: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"dry_run": bool(dry_run), "written": result.written}
    if dry_run:
        data["diff"] = result.diff
    return data
