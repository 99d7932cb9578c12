"""The operations that record models from their sources: import-ollama,
import-dir, rediscover, and migrate (from a legacy single file)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loader.errors import EXIT_USAGE
from loader.operations.results import Outcome

if TYPE_CHECKING:
    from loader.registry.core import Registry


def import_ollama_op(registry: Registry, url: str | None = None, dry_run: bool = False) -> Any:
    """Record the models of a running Ollama in the discovered layer."""
    from loader.importers import import_ollama

    # The validated entries are let go after the save: a door never reads
    # them again, and at 10,000 tags they are ~75 MB of the peak.
    report = import_ollama(registry, url=url, dry_run=bool(dry_run), keep_entries=False)
    if report["refused"]:  # the good models are recorded; each bad one is named
        return Outcome(report, EXIT_USAGE, "\n".join(r["error"] for r in report["refused"]))
    return report


def import_dir_op(
    registry: Registry,
    dirs: Sequence[str] = (),
    backend: str | None = "vllm",
    name: str | None = None,
    dry_run: bool = False,
    hash: bool = False,
) -> dict[str, Any]:
    """Record model folders (config.json or .gguf) in the discovered layer."""
    from loader.importers import import_dirs

    return import_dirs(
        registry,
        list(dirs or []),
        backend=backend,
        name=name,
        dry_run=bool(dry_run),
        hash=bool(hash),
        keep_entries=False,  # as import-ollama: read back when next asked for
    )


def rediscover_op(registry: Registry, dry_run: bool = False) -> dict[str, Any]:
    """Record every model folder under paths.models; report entries whose folder has gone."""
    from loader.importers import rediscover

    return rediscover(registry, dry_run=bool(dry_run), keep_entries=False)


def migrate_op(registry: Registry, dry_run: bool = False) -> Any:
    """Split a legacy single-file model_registry.json into the curated and discovered layers."""
    from loader.registry.migrate import migrate

    result = migrate(registry, dry_run=dry_run)
    return Outcome(result.to_json(), 0, "\n".join(result.warnings))
