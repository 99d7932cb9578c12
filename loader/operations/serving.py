"""The operations around a served model: activate-model, current-model,
probe-vision, record-performance, show-backends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loader.errors import EXIT_USAGE, OverrideError
from loader.operations.results import Outcome, Text

if TYPE_CHECKING:
    from loader.registry.core import Registry


def activate_model_op(
    registry: Registry, name: str | None = None, stop: bool = False
) -> dict[str, Any]:
    """Make a vLLM model the one server on the canonical port (--stop or none: stop it)."""
    from loader.orchestrator import activate, deactivate

    if stop or (name or "").strip().lower() == "none":
        return {"stopped": deactivate(registry=registry)}
    if not name:
        raise OverrideError("activate-model: give a model NAME, or --stop")
    return activate(name, registry=registry)


def current_model_op(registry: Registry) -> dict[str, Any] | None:
    """The running vLLM server's state, or null when none runs."""
    from loader.orchestrator import current

    return current(registry=registry)


def probe_vision_op(
    registry: Registry, name: str, image: str | None = None, expect: str | None = None
) -> Any:
    """Ask a vision model about an image, check that it sees it, and record the result."""
    from loader.probe.vision import run_vision_probe

    result = run_vision_probe(name, image, expect=expect, registry=registry)
    if result.vision_ok:
        from loader.probe.performance import record_probe_sample

        record_probe_sample(registry, name, result.latency_ms)
        return result.to_json()
    return Outcome(result.to_json(), EXIT_USAGE, result.notes)


def show_backends_op(registry: Registry, json: bool = False) -> Any:
    """Show each backend in use: its endpoint, its entries, and whether it answers."""
    from loader.upkeep.backends import backends_table, check_backends

    rows = check_backends(registry)
    return rows if json else Text(backends_table(rows))


def record_performance_op(
    registry: Registry,
    name: str,
    ttft_ms: float | None = None,
    tokens: int | None = None,
    duration_ms: float | None = None,
) -> dict[str, Any]:
    """Record one request's timings; keep the rolling summary in the discovered layer."""
    from loader.probe.performance import record_performance

    return record_performance(
        name, ttft_ms=ttft_ms, tokens=tokens, duration_ms=duration_ms, registry=registry
    )
