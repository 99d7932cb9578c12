"""``show-backends``: each backend endpoint in use, and whether it answers.

One row per (backend, resolved endpoint), with how many entries use it. Each
endpoint is asked once, through the bounded live client
(``backends_check.*``): ``GET …/models`` under an OpenAI-style ``/v1`` URL,
else the URL itself. Any HTTP answer counts as answering; its status is shown.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loader.livecall import Limits, LiveCallError, LiveClient
from loader.registry.core import Registry
from loader.registry.service import endpoint_url


def _probe_url(endpoint: str) -> str:
    return endpoint + "/models" if endpoint.rstrip("/").endswith("/v1") else endpoint


def _limits(registry: Registry) -> Limits:
    check = registry.cfg.backends_check
    return Limits(
        total_s=check.timeout_s, max_bytes=check.max_bytes, connect_s=check.connect_timeout_s
    )


def _ask(url: str, limits: Limits) -> dict[str, Any]:
    try:
        with LiveClient(limits) as client:
            answer = client.get(url)
    except LiveCallError as exc:
        return {"answers": False, "status": None, "detail": str(exc)}
    return {"answers": True, "status": answer.status, "detail": f"HTTP {answer.status}"}


def check_backends(registry: Registry) -> list[dict[str, Any]]:
    """The rows, sorted by backend then endpoint."""
    entries = registry.ensure_loaded()
    groups: dict[tuple[str, str], list[str]] = {}
    for name in sorted(entries):
        entry = entries[name]
        groups.setdefault((entry.backend, endpoint_url(entry, registry.cfg)), []).append(name)
    keys = sorted(groups)
    limits = _limits(registry)
    urls = [_probe_url(endpoint) for _, endpoint in keys]
    with ThreadPoolExecutor(max_workers=min(8, len(keys) or 1)) as pool:
        answers = list(pool.map(lambda url: _ask(url, limits), urls))
    rows = []
    for (backend, endpoint), url, answer in zip(keys, urls, answers, strict=True):
        rows.append(
            {
                "backend": backend,
                "endpoint": endpoint,
                "entries": len(groups[(backend, endpoint)]),
                "names": groups[(backend, endpoint)],
                "checked": url,
                **answer,
            }
        )
    return rows


def backends_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table for a person (``--json`` gives the rows)."""
    header = ("BACKEND", "ENDPOINT", "ENTRIES", "ANSWERS")
    lines = [
        (
            row["backend"],
            row["endpoint"],
            str(row["entries"]),
            ("yes" if row["answers"] else "no") + f" ({_short(row['detail'])})",
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(3)]
    out = []
    for row in [header, *lines]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:3])]
        out.append("  ".join([*cells, row[3]]).rstrip())
    return "\n".join(out) + "\n"


def _short(detail: str, limit: int = 80) -> str:
    # The connection error's reason, without the repeated method and URL.
    text = detail.split(": ", 1)[1] if detail.startswith("GET ") and ": " in detail else detail
    return text if len(text) <= limit else text[: limit - 3] + "..."
