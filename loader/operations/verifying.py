"""The operations that check what is on disk: verify, lock, unlock, refresh."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loader.errors import OverrideError
from loader.operations.results import Outcome

if TYPE_CHECKING:
    from loader.registry.core import Registry


def verify_op(
    registry: Registry,
    name: str | None = None,
    all: bool = False,
    rehash: bool = False,
) -> Any:
    """Recompute an entry's artifact hashes and enforce its version lock."""
    from loader.integrity.version_locks import verify_all, verify_model

    if all and name:
        raise OverrideError(f"verify: give a model NAME or --all, not both (got {name!r})")
    if not all:
        if not name:
            raise OverrideError("verify: give a model NAME or --all")
        result = verify_model(registry.get(name), registry=registry, rehash=rehash)
        return Outcome(result.to_json(), 0, result.warning or "")
    results, worst = verify_all(registry, sorted(registry.ensure_loaded()), rehash=rehash)
    registry.save()  # record every entry that verified, even when others failed
    warnings = [r["warning"] for r in results if r.get("warning")]
    failed = [r for r in results if "error" in r]
    lines = [*warnings, *(f"{r['name']}: {r['error']}" for r in failed)]
    if failed:
        lines.append(f"{len(failed)} of {len(results)} models failed verification")
    if not lines:
        return results
    return Outcome(results, worst, "\n".join(lines))


def lock_op(registry: Registry, name: str, set_expected: bool = False) -> dict[str, Any]:
    """Lock a model's version; --set-expected records its aggregate as expected."""
    from loader.integrity.version_locks import lock_model

    result = lock_model(registry.get(name), set_expected=set_expected, registry=registry)
    registry.save()
    return result


def unlock_op(registry: Registry, name: str) -> dict[str, Any]:
    """Unlock a model's version (the expected hash is kept)."""
    from loader.integrity.version_locks import unlock_model

    result = unlock_model(registry.get(name))
    registry.save()
    return result


def refresh_op(registry: Registry, jobs: int = 1, *, invoke: Any = None) -> Any:
    """Re-import, hash, verify, probe and snapshot; write the report and summary.
    ``invoke``: how the pipeline's tasks run operations (handed down by ``invoke``)."""
    from loader.pipeline.graph import build_graph
    from loader.pipeline.run import run_graph

    graph = build_graph(registry=registry, invoke=invoke)
    record = run_graph(graph, ["refresh"], jobs=int(jobs or 1))
    report = graph.last_report or {}
    code = max(record.exit_code, int(report.get("exit_code", 0)))
    return Outcome(report, code) if code else report
