"""Composing layers into entries: precedence, overrides, interpolation, provenance.

``compose`` merges both layers (:mod:`loader.registry.merge`), applies the
per-invocation overrides (:mod:`loader.registry.overrides`) and resolves
``${...}`` values (:mod:`loader.registry.interpolation`);
:mod:`loader.registry.validation` then validates the result, pointing each
error at the file, entry and field it came from (:mod:`loader.registry.sources`).
This module is the documented path for all of those names.
"""

from __future__ import annotations

from collections.abc import Sequence

from loader.errors import InterpolationError
from loader.registry.interpolation import Interpolator, iter_interpolated
from loader.registry.merge import (
    CURATED,
    DEFAULT,
    DISCOVERED,
    OVERRIDE,
    RULES_VERSION,
    DynamicFields,
    Path_,
    layer_of,
    merge_entry,
    set_path,
)
from loader.registry.overrides import EntryOverride, parse_entry_overrides, parse_value
from loader.registry.sources import Composed, Sources, locate_field
from loader.registry.validation import validate

__all__ = [
    "CURATED",
    "DEFAULT",
    "DISCOVERED",
    "OVERRIDE",
    "RULES_VERSION",
    "Composed",
    "DynamicFields",
    "EntryOverride",
    "Interpolator",
    "Path_",
    "Sources",
    "compose",
    "iter_interpolated",
    "layer_of",
    "locate_field",
    "merge_entry",
    "parse_entry_overrides",
    "parse_value",
    "set_path",
    "validate",
]


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
                where = locate_field(result, sources, dynamic, name, path)
                raise InterpolationError(
                    f"{where}: {'.'.join(path)}: interpolation {text!r}: {exc}"
                ) from None
            entry = set_path(entry, path, value)
            result.interpolated.setdefault(name, {})[path] = text
        result.merged[name] = entry
