"""Is the server up? ``/health`` (or ``/v1/health``), then ``/v1/models``
listing the served id. Every request is a bounded live call
(``loader.livecall``): ``request_timeout_s`` in all, connect, headers and body
together, and at most ``health_max_bytes`` of answer; a whole check may be
bounded further (``within``, what is left of a start's timeout)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loader.orchestrator.settings import Settings

if TYPE_CHECKING:  # imported when first used: current-model needs no HTTP
    from loader.livecall import Answer, LiveCallError, LiveClient


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str  # why not, for the timeout message
    max_model_len: int | None = None


def check_health(
    settings: Settings, port: int, served_id: str, within: float | None = None
) -> Health:
    """One round of checks against ``health_host:port``, ending within
    ``within`` seconds when given."""
    from loader.livecall import Limits, LiveCallError, LiveClient

    base = f"http://{_url_host(settings.health_host)}:{port}"
    limits = Limits(total_s=settings.request_timeout_s, max_bytes=settings.health_max_bytes)
    with LiveClient(limits, overall_s=within) as client:
        answers = []
        for path in settings.health_paths:
            status = _status(client, base + path)
            answers.append(f"{path}: {status}")
            if status == 200:
                break
        else:
            return Health(False, "; ".join(answers))
        try:
            answer = client.get(base + settings.models_path)
        except LiveCallError as exc:
            return Health(False, f"{settings.models_path}: {_reason(exc)}")
    if answer.status != 200:
        return Health(False, f"{settings.models_path}: {answer.status}")
    model = _listed_model(answer, served_id)
    if model is None:
        return Health(False, f"{settings.models_path} does not list {served_id!r}")
    length = model.get("max_model_len")
    return Health(True, "ok", length if isinstance(length, int) else None)


def _status(client: LiveClient, url: str) -> int | str:
    from loader.livecall import LiveCallError

    try:
        return client.get(url).status
    except LiveCallError as exc:
        return _reason(exc)


def _reason(exc: LiveCallError) -> str:
    return {
        "connection": "connection refused",
        "timeout": "timed out",
        "too_large": "answer too large",
        "malformed": "malformed answer",
    }.get(exc.kind, exc.kind)


def _listed_model(answer: Answer, served_id: str) -> dict[str, Any] | None:
    from loader.livecall import LiveCallError

    try:
        data = answer.json()
    except LiveCallError:
        return None
    listed = data.get("data") if isinstance(data, dict) else None
    for model in listed if isinstance(listed, list) else []:
        if isinstance(model, dict) and model.get("id") == served_id:
            return model
    return None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
