"""Deliberate edits of the layer files: the one place that writes the curated layer.

``set``/``unset``/``promote``/``demote`` and ``audit --fix`` change layer
entries as people would by hand, but safely: under the registry lock, on a
fresh read of both layers, checked by composing and validating the result
before anything is written, and written in the file's own format (key order,
indentation), so a one-field edit is a one-field diff.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loader.errors import OverrideError, RegistryWriteError
from loader.registry.compose import CURATED, DISCOVERED, Composed, Sources, validate
from loader.registry.core import Registry
from loader.registry.layers import Layer, registry_lock, write_if_changed

Path_ = tuple[str, ...]
Entries = list[dict[str, Any]]
# Given fresh copies of the layers' entry lists, change them in place.
Mutation = Callable[[dict[str, Entries]], None]


@dataclass
class EditResult:
    written: list[str]  # files rewritten
    diff: str  # unified diff of every file the edit changes


def layer_entry(entries: Entries, name: str) -> dict[str, Any] | None:
    return next((e for e in entries if e.get("name") == name), None)


def value_at(data: Any, path: Path_) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def holds(data: Any, path: Path_) -> bool:
    """True when ``path`` is present in ``data`` (even as null)."""
    for part in path[:-1]:
        if not isinstance(data, dict):
            return False
        data = data.get(part)
    return isinstance(data, dict) and path[-1] in data


def put(entry: dict[str, Any], path: Path_, value: Any) -> None:
    """Set ``path`` in place; existing keys keep their position, new ones go last."""
    node = entry
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def drop(entry: dict[str, Any], path: Path_) -> None:
    """Remove ``path`` in place, and any parent object it leaves empty."""
    node: Any = entry
    parents = []
    for part in path[:-1]:
        parents.append((node, part))
        node = node.get(part)
        if not isinstance(node, dict):
            return
    node.pop(path[-1], None)
    for parent, key in reversed(parents):
        if parent[key] == {}:
            del parent[key]
        else:
            break


def check_symlinks(sources: Sources, layers: list[str]) -> None:
    import os

    for key in layers:
        path = _layer(sources, key).path
        if os.path.islink(path):
            raise RegistryWriteError(
                f"{path}: is a symlink (to {os.readlink(path)}); refusing to edit through it: "
                "point registry.dir at the target's folder, or replace the link with a file"
            )


def _layer(sources: Sources, key: str) -> Layer:
    return sources.curated if key == CURATED else sources.discovered


def _with_entries(layer: Layer, entries: Entries) -> Layer:
    text = json.dumps(entries, ensure_ascii=False)
    return Layer(layer.path, entries, layer.style, layer.exists, has_interpolation="${" in text)


def edit_layers(
    registry: Registry,
    mutate: Mutation,
    *,
    layers: tuple[str, ...] = (CURATED, DISCOVERED),
    dry_run: bool = False,
    check: Callable[[Sources], None] | None = None,
) -> EditResult:
    """Apply ``mutate`` to fresh copies of the layers, validate the composed
    result, then write the changed files (discovered first: a crash between
    the two writes leaves a value in both layers, never in neither).

    The edit is first tried on the files as they are, without the lock, so
    bad input is refused before anything (even the lock file) is touched; it
    is then redone under the registry lock on a fresh read, which is what gets
    written. A dry run returns the diff and writes nothing."""

    def attempt() -> tuple[list[tuple[Layer, str]], str]:
        fresh = registry.read_sources()
        check_symlinks(fresh, list(layers))
        copies = {key: json.loads(json.dumps(_layer(fresh, key).entries)) for key in layers}
        mutate(copies)
        new = Sources(
            curated=_with_entries(fresh.curated, copies[CURATED])
            if CURATED in copies
            else fresh.curated,
            discovered=_with_entries(fresh.discovered, copies[DISCOVERED])
            if DISCOVERED in copies
            else fresh.discovered,
        )
        registry.check_sources(new)
        if check is not None:
            check(new)
        return _changed_files(fresh, new, [k for k in (DISCOVERED, CURATED) if k in copies])

    changed, diff = attempt()
    if dry_run:
        registry.discard_snapshot_refresh()
    if dry_run or not changed:
        return EditResult([], diff)
    written = []
    with registry_lock(registry.layer_files().folder):
        changed, diff = attempt()
        for layer, text in changed:
            if write_if_changed(layer.path, [text.encode("utf-8")]):
                written.append(str(layer.path))
    if written:
        registry.load(full=True)
        registry.flush_snapshot(wait=True)
    return EditResult(written, diff)


def _changed_files(
    old: Sources, new: Sources, keys: list[str]
) -> tuple[list[tuple[Layer, str]], str]:
    changed = []
    diff: list[str] = []
    for key in keys:
        old_layer, new_layer = _layer(old, key), _layer(new, key)
        old_text = old_layer.style.dumps(old_layer.entries) if old_layer.exists else ""
        new_text = old_layer.style.dumps(new_layer.entries)
        if old_text == new_text:
            continue
        changed.append((new_layer, new_text))
        diff.extend(
            difflib.unified_diff(
                old_text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=str(old_layer.path),
                tofile=str(old_layer.path),
            )
        )
    return changed, "".join(diff)


def validate_partial(
    sources: Sources, registry: Registry, layer: str, name: str, fields: dict[str, Any]
) -> None:
    """Check that ``fields`` alone make a valid entry, so a value masked in
    the composed entry (set into discovered under a curated one) is checked
    too. Values holding ``${`` are checked once composed."""
    if "${" in json.dumps(fields):
        return
    partial = {"name": name, **fields}
    target = _layer(sources, layer)
    only = Sources(
        curated=_with_entries(target, [partial]) if layer == CURATED else sources.curated,
        discovered=_with_entries(target, [partial]) if layer == DISCOVERED else sources.discovered,
    )
    # Name the real file and index in the message, not the one-entry copy.
    composed = Composed(order=[name], merged={name: partial})
    validate(composed, _index_as(only, sources, layer, name), registry.dynamic)


def _index_as(only: Sources, real: Sources, layer: str, name: str) -> Sources:
    # Provenance for the message comes from the one-entry layer; the file
    # path and index from the real one.
    class _Named(Sources):
        def locate(self, entry_name: str, _layer_key: str) -> str:
            return real.locate(entry_name, layer)

    return _Named(curated=only.curated, discovered=only.discovered)


def refuse(message: str) -> OverrideError:
    return OverrideError(message)
