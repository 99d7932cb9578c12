"""Is the server up? ``/health`` (or ``/v1/health``), then ``/v1/models``
listing the served id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:  # imported when first used: current-model needs no HTTP
    import httpx


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str  # why not, for the timeout message
    max_model_len: int | None = None


def check_health(settings: Settings, port: int, served_id: str) -> Health:
    """One round of checks against ``health_host:port``."""
    import httpx

    base = f"http://{_url_host(settings.health_host)}:{port}"
    with httpx.Client(timeout=settings.request_timeout_s, trust_env=False) as client:
        answers = []
        for path in settings.health_paths:
            status = _status(client, base + path)
            answers.append(f"{path}: {status}")
            if status == 200:
                break
        else:
            return Health(False, "; ".join(answers))
        try:
            response = client.get(base + settings.models_path)
        except httpx.HTTPError as exc:
            return Health(False, f"{settings.models_path}: {_reason(exc)}")
    if response.status_code != 200:
        return Health(False, f"{settings.models_path}: {response.status_code}")
    model = _listed_model(response, served_id)
    if model is None:
        return Health(False, f"{settings.models_path} does not list {served_id!r}")
    length = model.get("max_model_len")
    return Health(True, "ok", length if isinstance(length, int) else None)


def _status(client: httpx.Client, url: str) -> int | str:
    import httpx

    try:
        return client.get(url).status_code
    except httpx.HTTPError as exc:
        return _reason(exc)


def _reason(exc: httpx.HTTPError) -> str:
    import httpx

    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return type(exc).__name__


def _listed_model(response: httpx.Response, served_id: str) -> dict[str, Any] | None:
    try:
        data = response.json().get("data")
    except (ValueError, AttributeError):
        return None
    for model in data if isinstance(data, list) else []:
        if isinstance(model, dict) and model.get("id") == served_id:
            return model
    return None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
