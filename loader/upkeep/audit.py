"""``audit``: what is wrong with a registry, and the fixes that lose nothing.

Each finding names its entry, field and layer, says what is wrong and, where
one exists, how to fix it. ``--fix`` applies only lossless fixes (a dynamic
field moved from curated to discovered, a placeholder string made null, a
curated override equal to the discovered value dropped) through the locked,
format-keeping layer edit. The codes are documented in docs/health.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loader.registry.compose import CURATED, DISCOVERED, Sources, layer_of
from loader.registry.core import Registry
from loader.registry.schema import RegistryEntry
from loader.upkeep.fixes import Fixer, covers, drop_curated, merged, move_dynamic, set_null
from loader.upkeep.layer_edit import Entries, edit_layers, value_at

ERROR, WARNING, INFO = "error", "warning", "info"
_SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}
PLACEHOLDERS = ("None", "none", "null", "NULL", "Null", "")
_PATH_FIELDS = (("download_path",), ("backend_config", "model_path"), ("chat_template", "path"))


@dataclass
class Finding:
    severity: str
    code: str
    entry: str | None
    field: str | None
    layer: str | None
    message: str
    fix: str | None = None
    apply: Fixer | None = None  # the lossless fix, when there is one
    fixed: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "entry": self.entry,
            "field": self.field,
            "layer": self.layer,
            "message": self.message,
        }
        if self.fix:
            data["fix"] = self.fix
        if self.fixed:
            data["fixed"] = True
        return data


@dataclass
class Audit:
    findings: list[Finding] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.findings.append(Finding(*args, **kwargs))


def _nullable_text_fields() -> list[tuple[str, ...]]:
    """Fields typed ``str | None`` whose default is null: there a placeholder
    string was meant as "unset"."""
    from pydantic import BaseModel

    found = []

    def walk(model: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for key, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, (*prefix, key))
            elif annotation == (str | None) and info.default is None:
                found.append((*prefix, key))

    walk(RegistryEntry, ())
    # ImageWorks writes chat_template.source "none" on purpose: no template.
    return [path for path in found if path != ("chat_template", "source")]


def run_audit(registry: Registry, names: Sequence[str] = ()) -> list[Finding]:
    """Every finding for the registry (or for the named entries)."""
    entries = registry.ensure_loaded()
    for name in names:
        registry.get(name)  # an unknown name is refused, with suggestions
    sources = registry.read_sources()
    audit = Audit()
    wanted = set(names) if names else None
    _layer_findings(audit, registry, sources)
    _entry_findings(audit, registry, sources, entries)
    if wanted is None:
        _role_findings(audit, registry, entries)
    findings = [f for f in audit.findings if wanted is None or f.entry in wanted]
    findings.sort(key=lambda f: (_SEVERITY_ORDER[f.severity], f.entry or "", f.code, f.field or ""))
    return findings


# --- what the layer files say ---------------------------------------------------


def _layer_findings(audit: Audit, registry: Registry, sources: Sources) -> None:
    dynamic = registry.dynamic
    texts = _nullable_text_fields()
    discovered = {e["name"]: e for e in sources.discovered.entries}
    for layer_key, layer in ((CURATED, sources.curated), (DISCOVERED, sources.discovered)):
        for entry in layer.entries:
            name = entry["name"]
            for path in texts:
                value = value_at(entry, path)
                if isinstance(value, str) and value.strip() in PLACEHOLDERS:
                    audit.add(
                        WARNING,
                        "placeholder-string",
                        name,
                        ".".join(path),
                        layer_key,
                        f"holds the string {value!r} where null (unset) is meant",
                        "set it to null",
                        set_null(layer_key, name, path),
                    )
    for entry in sources.curated.entries:
        name = entry["name"]
        disc = discovered.get(name)
        for key, value in entry.items():
            if key == "name" or value is None:
                continue
            if key in dynamic:
                lossless = disc is None or covers(merged(disc.get(key), value), value)
                audit.add(
                    WARNING,
                    "dynamic-in-curated",
                    name,
                    key,
                    CURATED,
                    f"{key} is a dynamic field (registry.dynamic_fields): tooling owns it in "
                    "the discovered layer, so the curated copy only hides what rediscovery finds",
                    "move it to the discovered layer"
                    if lossless
                    else "remove it from the curated layer (the discovered value already wins)",
                    move_dynamic(name, key) if lossless else None,
                )
        same = [
            key
            for key, value in entry.items()
            if key != "name"
            and key not in dynamic
            and value is not None
            and disc is not None
            and disc.get(key) == value
        ]
        if same:
            audit.add(
                INFO,
                "redundant-override",
                name,
                None,
                CURATED,
                f"{len(same)} curated value(s) equal the discovered ones, so they override "
                f"nothing: {', '.join(same)}",
                "drop them from the curated layer (keep any you mean to pin against rediscovery)",
                drop_curated(name, same),
            )
        if disc is None and entry.get("backend") is None:
            audit.add(
                WARNING,
                "orphan-override",
                name,
                None,
                CURATED,
                "a curated override with no discovered entry left to override (and no backend "
                "of its own)",
                "remove it from the curated layer, or give it a backend to make it an entry",
            )
        elif disc is not None and entry.get("backend") is None:
            # An override-only entry: fields the discovered entry no longer has.
            gone = [
                key
                for key, value in entry.items()
                if key != "name"
                and key not in dynamic
                and value is not None
                and disc.get(key) is None
            ]
            if gone:
                audit.add(
                    INFO,
                    "orphan-override",
                    name,
                    ", ".join(gone),
                    CURATED,
                    "curated overrides of fields the discovered entry no longer has",
                    "keep them if you mean them as settings; else remove them (unset NAME FIELD)",
                )


# --- what the composed entries say ------------------------------------------------


def _local(path: str | None) -> str | None:
    if not path or path.startswith("ollama:"):
        return None
    expanded = os.path.expanduser(path)
    return expanded if os.path.isabs(expanded) else None


def _entry_findings(
    audit: Audit, registry: Registry, sources: Sources, entries: dict[str, RegistryEntry]
) -> None:
    by_served: dict[tuple[str, str], list[str]] = {}
    by_download: dict[str, list[str]] = {}
    for name in sorted(entries):
        entry = entries[name]
        if entry.served_id:
            by_served.setdefault((entry.backend, entry.served_id), []).append(name)
        local = _local(entry.download_path)
        if local:
            by_download.setdefault(os.path.realpath(local), []).append(name)
    for (backend, served), names in by_served.items():
        for other in names[1:]:
            audit.add(
                WARNING,
                "duplicate-served-id",
                other,
                "served_model_id",
                None,
                f"{backend} serves {served!r} for {names[0]!r} too: two names for one model",
                f"keep one entry; mark the other deprecated or remove it ({names[0]!r})",
            )
    for real, names in by_download.items():
        for other in names[1:]:
            audit.add(
                ERROR,
                "duplicate-download",
                other,
                "download_path",
                None,
                f"the download {real} is also recorded as {names[0]!r}",
                f"keep one entry for the folder (the other is {names[0]!r})",
            )
    max_age = registry.cfg.probe_schedule.max_age
    now = datetime.now(UTC)
    for name in sorted(entries):
        entry = entries[name]
        prov = None
        for path in _PATH_FIELDS:
            local = _local(value_at(entry.model_dump(), path))
            if local and not os.path.exists(local):
                prov = prov or sources.provenance(name, registry.dynamic)
                is_template = path == ("chat_template", "path")
                audit.add(
                    WARNING,
                    "missing-path",
                    name,
                    ".".join(path),
                    layer_of(prov, path),
                    f"{local} does not exist on this host"
                    + ("; activation starts vLLM without --chat-template" if is_template else ""),
                    "run import-dir on the model folder again to re-extract it"
                    if is_template
                    else "fix the path (set NAME FIELD=PATH), or fetch the files",
                )
        lock = entry.version_lock
        if lock.locked and not lock.expected_aggregate_sha256:
            audit.add(
                ERROR,
                "lock-without-expected",
                name,
                "version_lock.expected_aggregate_sha256",
                DISCOVERED,
                "locked, but no expected aggregate is recorded, so verify cannot hold the lock",
                f"imageworks-loader lock {_quote(name)} --set-expected",
            )
        if entry.has_capability("vision") and not entry.deprecated:
            _probe_finding(audit, name, entry.probes.vision, max_age, now)
        missing_since = entry.metadata.get("ollama_missing_since")
        if entry.backend == "ollama" and missing_since:
            audit.add(
                WARNING,
                "ollama-missing",
                name,
                "metadata.ollama_missing_since",
                DISCOVERED,
                f"Ollama has not served {entry.served_id or name!r} since {missing_since}",
                "pull the model again (then import-ollama), or remove the entry",
            )


def _probe_finding(audit: Audit, name: str, record: Any, max_age: Any, now: datetime) -> None:
    fix = f"imageworks-loader probe-vision {_quote(name)}"
    if not isinstance(record, dict):
        audit.add(
            INFO,
            "vision-unprobed",
            name,
            "probes.vision",
            DISCOVERED,
            "a vision model never probed",
            fix,
        )
        return
    if not record.get("vision_ok"):
        audit.add(
            WARNING,
            "vision-probe-failed",
            name,
            "probes.vision",
            DISCOVERED,
            f"its last vision probe failed: {record.get('notes') or 'no notes'}",
            fix,
        )
        return
    if max_age is None:
        return
    try:
        when = datetime.fromisoformat(str(record.get("timestamp")))
        age = (now - when).total_seconds()
    except (TypeError, ValueError):
        age = float("inf")
    if age > float(max_age):
        audit.add(
            INFO,
            "vision-probe-stale",
            name,
            "probes.vision",
            DISCOVERED,
            f"its last vision probe is older than probe.max_age ({max_age} s)",
            fix,
        )


def _role_findings(audit: Audit, registry: Registry, entries: dict[str, RegistryEntry]) -> None:
    defaults = registry.cfg.roles.default_capabilities
    roles = set(defaults)
    for entry in entries.values():
        roles.update(entry.roles)
        roles.update(entry.role_priority)
    for role in sorted(roles):
        needed = list(defaults.get(role) or [])
        usable = [
            n
            for n, e in entries.items()
            if role in e.roles and not e.deprecated and all(e.has_capability(c) for c in needed)
        ]
        if not usable:
            audit.add(
                WARNING,
                "role-without-models",
                None,
                "roles",
                None,
                f"no usable model has the role {role!r}"
                + (f" (it needs {', '.join(needed)})" if needed else ""),
                f"give a model the role: imageworks-loader set NAME 'roles=[\"{role}\"]'",
            )


def _quote(name: str) -> str:
    return "'" + name.replace("'", "'\\''") + "'"


# --- the operation -----------------------------------------------------------------


def audit_registry(
    registry: Registry, names: Sequence[str] = (), fix: bool = False, dry_run: bool = False
) -> tuple[list[Finding], str]:
    """Findings (after fixing, with ``fix``) and the diff of the fixes."""
    findings = run_audit(registry, names)
    fixable = [f for f in findings if f.apply is not None]
    if not (fix or dry_run) or not fixable:
        return findings, ""

    def mutate(copies: dict[str, Entries]) -> None:
        for finding in fixable:
            assert finding.apply is not None
            finding.apply(copies)

    result = edit_layers(registry, mutate, dry_run=dry_run)
    if dry_run:
        return findings, result.diff
    for finding in fixable:
        finding.fixed = True
    return findings, result.diff


def findings_text(findings: Sequence[Finding]) -> str:
    return "".join(json.dumps(f.to_json()) + "\n" for f in findings)
