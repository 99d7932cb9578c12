"""Import model folders (Hugging Face layout, or GGUF files) into the
discovered layer: ``import-dir`` for folders you name, ``rediscover`` for
every model folder under the configured model roots.

A model folder holds a ``config.json`` or a ``.gguf`` file. A folder that an
entry already records (same backend, same resolved path) updates that entry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from loader.errors import ImporterError
from loader.importers.chat_template import TemplateStore, template_dir
from loader.importers.folder_fields import folder_fields
from loader.importers.folder_fields import newest_date as _newest_date  # noqa: F401 (its old name)
from loader.importers.identity import (
    PATH_FIELDS,
    from_another_host,
    get_field,
    needs_repair,
    set_field,
)
from loader.importers.plan import (
    Candidate,
    EntryChange,
    ImportPlan,
    apply_plan,
    checked,
    plan_import,
    refresh_patterns,
)
from loader.importers.shape import display_name, relative_to_roots
from loader.integrity.hash_cache import HashCache
from loader.registry.core import Registry
from loader.registry.schema import RegistryEntry

_SKIPPED_FOLDERS = {".git", ".cache", "__pycache__"}


def is_model_folder(path: Path) -> bool:
    """A folder holding a ``config.json`` or a ``.gguf`` file."""
    if (path / "config.json").is_file():
        return True
    try:
        return any(p.suffix.lower() == ".gguf" and p.is_file() for p in path.iterdir())
    except OSError:
        return False


def find_model_folders(root: Path, depth: int) -> list[Path]:
    """Model folders at most ``depth`` levels below ``root`` (root included);
    a model folder's own subfolders are not searched."""
    found: list[Path] = []
    seen: set[str] = set()

    def visit(folder: Path, left: int) -> None:
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop, or two links to one model
            return
        seen.add(real)
        if is_model_folder(folder):
            found.append(folder)
            return
        if left <= 0:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if child.name not in _SKIPPED_FOLDERS:
                visit(child, left - 1)

    visit(root, depth)
    return found


def _local_folders(entry: RegistryEntry) -> set[str]:
    """Resolved local paths an entry records (model_path, download_path)."""
    found = set()
    for value in (entry.backend_config.model_path, entry.download_path):
        if value and not value.startswith("ollama:") and os.path.isabs(os.path.expanduser(value)):
            found.add(os.path.realpath(os.path.expanduser(value)))
    return found


def _import_folders(
    registry: Registry,
    folders: Iterable[Path],
    source: dict[str, Any],
    *,
    backend: str | None,
    new_backend: str,
    name: str | None,
    hash: bool,
) -> tuple[ImportPlan, HashCache, TemplateStore]:
    from loader.integrity.entry_hashing import hash_cache_for

    registry.ensure_composed()  # compared with the layers: compose once, not also the snapshot
    entries = registry.ensure_loaded()
    recorded = {n: _local_folders(e) for n, e in sorted(entries.items()) if e.backend != "ollama"}
    cache = hash_cache_for(registry)
    templates = TemplateStore(template_dir(registry.cfg))
    candidates = []
    for folder in folders:
        real = os.path.realpath(folder)
        rel = relative_to_roots(registry.cfg, os.path.abspath(folder))
        matches = [
            n
            for n, paths in recorded.items()
            if (real in paths or from_another_host(entries[n], rel))
            and (backend is None or entries[n].backend == backend)
        ]
        if name and matches and name not in matches:
            raise ImporterError(
                f"model folder {os.path.abspath(folder)!r}: already recorded as "
                f"{matches[0]!r}; refusing to record it again as {name!r} "
                "(one download is one entry)"
            )
        chosen = entries[matches[0]].backend if matches else new_backend
        new_name, fields, raw = folder_fields(
            registry, folder, chosen, hash=hash, cache=cache, templates=templates
        )
        force: set[tuple[str, ...]] = set()
        if matches:
            fields.pop("display_name")
            current = entries[matches[0]].model_dump()
            for field_path in PATH_FIELDS:
                before, after = get_field(current, field_path), get_field(fields, field_path)
                if needs_repair(field_path, before, after):
                    force.add(field_path)
                elif (
                    isinstance(before, str)
                    and isinstance(after, str)
                    and os.path.realpath(os.path.expanduser(before)) == os.path.realpath(after)
                ):
                    # Keep the spelling the entry records (a link, ~,
                    # ${paths.models}…) when it leads to the same place.
                    set_field(fields, field_path, before)
                    raw.pop(field_path, None)
        new_name = name or new_name
        if name:
            fields["display_name"] = display_name(name)
        if "${" in new_name and not matches:
            raise ImporterError(
                f"{os.path.abspath(folder)}: its entry name {new_name!r} holds '${{', which a "
                "registry name may not hold (names are identities); choose one with --name"
            )
        candidates.append(
            checked(
                Candidate(
                    "model folder",
                    os.path.abspath(folder),
                    new_name,
                    fields,
                    matches,
                    raw=raw,
                    force=force,
                )
            )
        )
    refresh = refresh_patterns(registry)
    refresh.exact.add("chat_template")  # what the folder holds now
    plan = plan_import(registry, source, candidates, refresh)
    return plan, cache, templates


def import_dirs(
    registry: Registry,
    dirs: Sequence[str],
    backend: str | None = None,
    name: str | None = None,
    dry_run: bool = False,
    hash: bool = False,
    *,
    keep_entries: bool = True,
) -> dict[str, Any]:
    """Record each model folder named (or found below a folder named).
    ``keep_entries``: see ``Registry.save``."""
    if not dirs:
        raise ImporterError(
            "import-dir: give one or more model folders (imageworks-loader import-dir FOLDER ...)"
        )
    backend = backend or "vllm"
    depth = registry.cfg.importers.rediscover_depth
    folders: list[Path] = []
    for text in dirs:
        path = Path(os.path.expanduser(str(text)))
        if not path.is_dir():
            raise ImporterError(f"{path.absolute()}: not a folder")
        found = find_model_folders(path, depth)
        if not found:
            raise ImporterError(
                f"{path.absolute()}: no model folder (one holding config.json or a .gguf file) "
                f"within {depth} levels (importers.rediscover.depth)"
            )
        known = {os.path.realpath(f) for f in folders}
        folders.extend(f for f in found if os.path.realpath(f) not in known)
    if name and len(folders) > 1:
        raise ImporterError(
            f"--name {name!r} names one model, but {len(folders)} model folders were found: "
            + ", ".join(str(f) for f in folders)
        )
    source = {
        "source": "folders",
        "dirs": [os.path.abspath(os.path.expanduser(str(d))) for d in dirs],
    }
    plan, cache, templates = _import_folders(
        registry,
        folders,
        source,
        backend=backend,
        new_backend=backend,
        name=name,
        hash=hash,
    )
    written = apply_plan(registry, plan, dry_run=dry_run, keep_entries=keep_entries)
    if not dry_run:
        cache.save()
        templates.commit()
    return plan.to_json(dry_run=dry_run, written=written)


def rediscover(
    registry: Registry, dry_run: bool = False, *, keep_entries: bool = True
) -> dict[str, Any]:
    """Import every model folder under ``paths.models``; report entries whose
    folder has gone (they are kept). ``keep_entries``: see ``Registry.save``."""
    roots = registry.cfg.paths.model_roots
    depth = registry.cfg.importers.rediscover_depth
    backend = registry.cfg.importers.rediscover_backend
    folders: list[Path] = []
    for root in roots:
        path = Path(os.path.expanduser(str(root)))
        if path.is_dir():
            folders.extend(find_model_folders(path, depth))
    source = {"source": "rediscover", "roots": [str(r) for r in roots], "depth": depth}
    plan, _, templates = _import_folders(
        registry,
        folders,
        source,
        backend=None,
        new_backend=backend,
        name=None,
        hash=False,
    )
    registry.ensure_composed()  # compared with the layers: compose once, not also the snapshot
    entries = registry.ensure_loaded()
    for entry_name_, entry in sorted(entries.items()):
        gone = sorted(p for p in _local_folders(entry) if not os.path.exists(p))
        if entry.backend != "ollama" and gone:
            plan.missing.append(EntryChange(entry_name_, gone[0], note="folder not found; kept"))
    written = apply_plan(registry, plan, dry_run=dry_run, keep_entries=keep_entries)
    if not dry_run:
        templates.commit()
    return plan.to_json(dry_run=dry_run, written=written)
