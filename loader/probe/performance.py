"""Rolling performance summaries, as the ImageWorks loader keeps them.

Each sample is one request's ``ttft_ms``, ``tokens_generated`` and
``duration_ms``. The last ``performance.window`` samples per model live in
``performance.samples_file`` (in the registry's state folder); the summary
(``rolling_samples``, ``ttft_ms_avg``, ``throughput_toks_per_s_avg``,
``last_sample``) is stored under ``performance`` in the discovered layer.
Both are written under the registry lock, so concurrent recorders lose no
sample.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loader import logs
from loader.errors import OverrideError
from loader.fileio import atomic_write_bytes, read_regular_file
from loader.registry.core import Registry, default_registry
from loader.registry.layers import registry_lock

DEFAULT_WINDOW = 50
_MAX_SAMPLES_BYTES = 64 * 1024 * 1024


def _number(label: str, value: Any, *, integer: bool = False) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = int(value) if integer else float(value)
        except (TypeError, ValueError):
            raise OverrideError(f"record-performance: {label}: not a number: {value!r}") from None
    if integer and value != int(value):
        raise OverrideError(f"record-performance: {label}: not an integer: {value!r}")
    if not math.isfinite(value) or value < 0:
        raise OverrideError(f"record-performance: {label}: not a finite number >= 0: {value!r}")
    return int(value) if integer else float(value)


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The ImageWorks rolling summary of ``samples`` (oldest first)."""
    ttfts = [s["ttft_ms"] for s in samples if s.get("ttft_ms") is not None]
    rates = []
    for s in samples:
        ttft, duration, tokens = s.get("ttft_ms"), s.get("duration_ms"), s.get("tokens_generated")
        if ttft is None or duration is None or tokens is None or duration <= ttft:
            continue
        rates.append(max(tokens - 1, 1) / ((duration - ttft) / 1000))
    return {
        "rolling_samples": len(samples),
        "ttft_ms_avg": round(sum(ttfts) / len(ttfts), 3) if ttfts else None,
        "throughput_toks_per_s_avg": round(sum(rates) / len(rates), 3) if rates else None,
        "last_sample": samples[-1] if samples else None,
    }


def samples_path(registry: Registry) -> Path:
    configured = registry.cfg.performance.samples_file
    if configured:
        return configured
    return registry.layer_files().folder / ".imageworks-state" / "performance-samples.json"


def _read_samples(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        data = json.loads(read_regular_file(path, _MAX_SAMPLES_BYTES))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logs.warning(__name__, f"{path}: unreadable ({exc}); starting the samples afresh")
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, list)}


def record_performance(
    name: str,
    ttft_ms: float | None = None,
    tokens: int | None = None,
    duration_ms: float | None = None,
    *,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """Add one sample for ``name`` and store the new rolling summary; returns it.

    ``ttft_ms`` (time to the first token) and ``tokens`` may be None (a probe
    knows neither); ``duration_ms`` is required.
    """
    registry = registry or default_registry()
    ttft = _number("ttft_ms", ttft_ms)
    count = _number("tokens", tokens, integer=True)
    duration = _number("duration_ms", duration_ms)
    if duration is None:
        raise OverrideError("record-performance: duration_ms: missing (the request's length)")
    registry.get(name)
    window = registry.cfg.performance.window
    sample = {
        "ttft_ms": ttft,
        "tokens_generated": count,
        "duration_ms": duration,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    path = samples_path(registry)
    # The reload below drops unsaved changes: write what a batch holds first
    # (a pipeline run defers its saves; the probe that called us is one).
    registry.flush_saves()
    with registry_lock(registry.layer_files().folder):
        samples = _read_samples(path)
        kept = [*samples.get(name, []), sample][-window:]
        samples[name] = kept
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, (json.dumps(samples, indent=2) + "\n").encode("utf-8"))
        summary = summarize(kept)
        registry.load(full=True)  # under the lock: the save diffs against this
        entry = registry.get(name)
        for key, value in summary.items():
            setattr(entry.performance, key, value)
        registry.save()
    return {"name": name, "performance": summary}


def record_probe_sample(registry: Registry, name: str, latency_ms: float | None) -> None:
    """A successful probe is a request too: one sample, its whole latency
    (a probe streams nothing, so it knows no time to the first token)."""
    if latency_ms is None:
        return
    if registry.entry_override_texts:
        return  # a one-run override never writes shared files
    record_performance(name, duration_ms=latency_ms, registry=registry)
