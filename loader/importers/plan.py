"""What an import changes (added / updated / missing, field by field), and
applying it through ``Registry.save()``.

Importers describe each model they find as a ``Candidate``: the fields the
source says, the name a new entry would get, and the existing entries that are
the same model. ``plan_import`` compares candidates with the composed registry;
``apply_plan`` writes the plan, or nothing on a dry run.

Re-import rule: fields matching the refresh patterns (the registry's dynamic
fields and ``importers.refresh_fields``) take the source's value; every other
field is filled only while it is unset, so people's and other tools' choices
stay, and curated precedence still applies when the layers are composed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from loader.errors import ImporterError
from loader.importers.shape import drop_none
from loader.registry.compose import set_path
from loader.registry.core import Registry
from loader.registry.field_patterns import FieldPatterns
from loader.registry.schema import RegistryEntry
from loader.rows import Rows

# Fields compared key by key; every other field is one value (a capability map
# is replaced whole or not at all, never merged with a curated one).
_KEYED_FIELDS = ("backend_config", "metadata", "chat_template")

Path_ = tuple[str, ...]


def refresh_patterns(registry: Registry) -> FieldPatterns:
    """The registry's dynamic fields and ``importers.refresh_fields``."""
    cfg = registry.cfg
    return FieldPatterns([*cfg.registry.dynamic_fields, *cfg.importers.refresh_fields])


@dataclass
class Candidate:
    """One model as a source describes it."""

    kind: str  # "Ollama model", "model folder"
    model: str  # how the source names it: an Ollama tag, a folder
    name: str  # the name a new entry gets
    fields: dict[str, Any]  # entry fields, without "name" (values as they resolve)
    matches: list[str] = field(default_factory=list)  # entries that are this model
    # Fields stored as written rather than as they resolve
    # (``${paths.models}/…``, ``${backends.vllm.port}``).
    raw: dict[Path_, Any] = field(default_factory=dict)
    # Fields a re-import sets even though set (a path that no longer leads to
    # the model on this host, or a relative one).
    force: set[Path_] = field(default_factory=set)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.model!r}"


@dataclass
class FieldChange:
    path: Path_
    before: Any
    after: Any  # as it resolves
    raw: Any = None  # as stored, when that differs (an interpolation)

    def to_json(self) -> dict[str, Any]:
        after = self.after if self.raw is None else self.raw
        return {"field": ".".join(self.path), "before": self.before, "after": after}


@dataclass
class EntryChange:
    name: str
    model: str
    changes: list[FieldChange] = field(default_factory=list)
    note: str = ""
    added: dict[str, Any] | None = None  # a new entry's fields, reported as changes
    added_raw: dict[Path_, Any] = field(default_factory=dict)  # of those, stored as written

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "model": self.model}
        if self.note:
            data["note"] = self.note
        if self.added is not None:  # made when reported: an import of 10,000 new
            data["changes"] = [  # entries keeps no 400,000 change objects
                {"field": _dotted(p), "before": None, "after": self.added_raw.get(p, v)}
                for p, v in _leaves(self.added)
            ]
        else:
            data["changes"] = [c.to_json() for c in self.changes]
        return data


@dataclass
class ImportPlan:
    source: dict[str, Any]  # where the models came from, for the report
    added: list[EntryChange] = field(default_factory=list)
    updated: list[EntryChange] = field(default_factory=list)
    missing: list[EntryChange] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    new_entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def changes_anything(self) -> bool:
        return bool(self.added or self.updated or any(m.changes for m in self.missing))

    def to_json(self, *, dry_run: bool, written: bool) -> dict[str, Any]:
        return {
            **self.source,
            "dry_run": dry_run,
            "written": written,
            # Made as they are printed: 10,000 new entries are ~300,000 field rows.
            "added": Rows(self.added, EntryChange.to_json),
            "updated": [c.to_json() for c in self.updated],
            "missing": [c.to_json() for c in self.missing],
            "unchanged": sorted(self.unchanged),
        }


@functools.lru_cache(maxsize=1024)
def _dotted(path: Path_) -> str:
    # One string per field name, not one per reported change (300,000 for
    # 10,000 new entries).
    return ".".join(path)


def _unset(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _leaves(fields: dict[str, Any]) -> Iterable[tuple[Path_, Any]]:
    for key, value in fields.items():
        if key in _KEYED_FIELDS and isinstance(value, dict):
            for sub, sub_value in value.items():
                yield (key, sub), sub_value
        else:
            yield (key,), value


def _get(data: dict[str, Any], path: Path_) -> Any:
    node: Any = data
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def field_changes(
    current: dict[str, Any],
    fields: dict[str, Any],
    refresh: FieldPatterns,
    raw: dict[Path_, Any] | None = None,
    force: set[Path_] | frozenset[Path_] = frozenset(),
) -> list[FieldChange]:
    """What applying ``fields`` to an entry (``current``, as dumped) changes."""
    raw = raw or {}
    changes = []
    for path, value in _leaves(fields):
        before = _get(current, path)
        if path in refresh or path in force:
            if before != value:
                changes.append(FieldChange(path, before, value, raw.get(path)))
        elif _unset(before) and not _unset(value):
            changes.append(FieldChange(path, before, value, raw.get(path)))
    return changes


def _portable_rewrites(
    registry: Registry, name: str, candidate: Candidate, changes: list[FieldChange]
) -> list[FieldChange]:
    """A value an older import stored literally (``"port": 24001``) that the
    importer now stores as an interpolation resolving to the same value
    (``${backends.vllm.port}``): rewritten, so the entry follows the config.
    Only in the discovered layer, and never where the curated layer decides."""
    changed = {c.path for c in changes}
    rewrites = []
    for path, raw in candidate.raw.items():
        if path in changed or not isinstance(raw, str) or not raw.startswith("${"):
            continue
        curated, discovered = registry.stored(name, path)
        value = _get(candidate.fields, path)
        if curated is None and discovered is not None and discovered == value:
            rewrites.append(FieldChange(path, discovered, value, raw))
    return rewrites


def describe(entry: RegistryEntry) -> str:
    """Which model an entry is, for messages."""
    what = entry.served_id or entry.backend_config.model_path or entry.download_path
    return f"backend {entry.backend}, model {what!r}" if what else f"backend {entry.backend}"


def plan_import(
    registry: Registry,
    source: dict[str, Any],
    candidates: Iterable[Candidate],
    refresh: FieldPatterns,
) -> ImportPlan:
    """Compare candidates with the composed registry, one at a time (an
    iterator's candidates are let go once compared). A new model whose name
    is taken by a different model is refused, naming both."""
    registry.ensure_composed()  # compared with the layers: compose once, not also the snapshot
    entries = registry.ensure_loaded()
    plan = ImportPlan(source)
    claimed: dict[str, str] = {}  # new name -> the model claiming it
    for candidate in candidates:
        if not candidate.matches:
            name = candidate.name
            if name in entries:
                raise ImporterError(
                    f"{candidate.label}: its name {name!r} is already taken by a different "
                    f"model (entry {name!r}: {describe(entries[name])})"
                )
            if name in claimed:
                raise ImporterError(
                    f"{candidate.label}: its name {name!r} is also the name "
                    f"{claimed[name]} gets; two models cannot share a name"
                )
            claimed[name] = candidate.label
            fields = drop_none(candidate.fields)
            plan.new_entries[name] = fields
            raw = {p: r for p, r in candidate.raw.items() if _get(fields, p) is not None}
            plan.added.append(EntryChange(name, candidate.model, added=fields, added_raw=raw))
            continue
        for name in candidate.matches:
            changes = field_changes(
                entries[name].model_dump(),
                candidate.fields,
                refresh,
                candidate.raw,
                candidate.force,
            )
            changes += _portable_rewrites(registry, name, candidate, changes)
            if changes:
                plan.updated.append(EntryChange(name, candidate.model, changes))
            else:
                plan.unchanged.append(name)
    return plan


def apply_plan(
    registry: Registry, plan: ImportPlan, *, dry_run: bool, keep_entries: bool = True
) -> bool:
    """Write the plan into the discovered layer; True when a file changed.
    A dry run writes nothing, not even a stale snapshot's refresh.
    ``keep_entries``: see ``Registry.save``."""
    if dry_run:
        registry.discard_snapshot_refresh()
        return False
    if not plan.changes_anything:
        return False
    registry.ensure_composed()  # compared with the layers: compose once, not also the snapshot
    entries = registry.ensure_loaded()
    raw: dict[str, list[tuple[Path_, Any]]] = {}
    for name, fields in plan.new_entries.items():
        entries[name] = RegistryEntry.model_validate({"name": name, **fields})
    for change in [*plan.added, *plan.updated, *plan.missing]:
        stored = [(item.path, item.raw) for item in change.changes if item.raw is not None]
        stored += change.added_raw.items()
        if stored:
            raw[change.name] = stored
    for change in [*plan.updated, *plan.missing]:
        if not change.changes:
            continue
        data = entries[change.name].model_dump()
        for item in change.changes:
            data = set_path(data, item.path, item.after)
        entries[change.name] = RegistryEntry.model_validate(data)
    return registry.save(raw=raw, keep_entries=keep_entries)


def missing_change(
    entry: RegistryEntry, model: str, path: Path_, value: Any, note: str
) -> EntryChange:
    """An entry whose model has gone: marked at ``path`` unless already marked."""
    before = _get(entry.model_dump(), path)
    changes = [FieldChange(path, before, value)] if before is None else []
    return EntryChange(entry.name, model, changes, note)


def checked(candidate: Candidate) -> Candidate:
    """The candidate, once its fields are known to make a valid entry."""
    from pydantic import ValidationError

    try:
        RegistryEntry.model_validate({"name": candidate.name, **candidate.fields})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise ImporterError(f"{candidate.label}: malformed data: {where}: {error['msg']}") from None
    return candidate
