"""Reading a running Ollama: ``GET /api/tags`` once, then ``POST /api/show``
for each tag, several at a time, every request bounded (``loader.livecall``).

Settings come from ``importers.ollama`` (conf/importers/default.yaml):
``timeout_s`` (each request's total deadline: connect, headers and body),
``connect_timeout_s``, ``max_bytes`` (each answer, decompressed),
``overall_s`` (the whole read) and ``workers`` (``/api/show`` requests at once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loader.config_schema import OllamaImportConfig
from loader.errors import ImporterError
from loader.importers.ollama_door import BadModel
from loader.livecall import Limits, LiveCallError, LiveClient

URL_VARIABLE = "OLLAMA_HOST"


# The bounds of every read (``importers.ollama``), declared in the config schema.
OllamaSettings = OllamaImportConfig


class OllamaReader:
    """The two reads an import needs, each bounded, with one-line errors."""

    def __init__(self, url: str, settings: OllamaSettings) -> None:
        self.url = url
        self.settings = settings
        limits = Limits(settings.timeout_s, settings.max_bytes, settings.connect_timeout_s)
        self._client = LiveClient(limits, overall_s=settings.overall_s)

    def __enter__(self) -> OllamaReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def tags(self) -> list[Any]:
        """The listing's model items; any failure ends the import (one line)."""
        try:
            answer = self._client.get(self.url + "/api/tags")
        except LiveCallError as exc:
            if exc.kind == "connection":
                raise ImporterError(
                    f"Ollama not reachable at {self.url} ({exc.reason or exc}); start it, or set "
                    f"{URL_VARIABLE} (or importers.ollama.url, or --url) to where it listens"
                ) from None
            raise ImporterError(f"Ollama at {self.url}: /api/tags: {_plain(exc)}") from None
        if answer.status != 200:
            raise ImporterError(
                f"Ollama at {self.url}: GET {self.url}/api/tags answered HTTP {answer.status}"
            )
        try:
            data = answer.json()
        except LiveCallError as exc:
            raise ImporterError(f"Ollama at {self.url}: /api/tags: {_plain(exc)}") from None
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise ImporterError(
                f"Ollama at {self.url}: malformed /api/tags payload: no 'models' list"
            )
        return models

    def show(self, tag: str) -> Any:
        """One tag's ``/api/show`` answer as JSON; a ``BadModel`` when it fails."""
        try:
            answer = self._client.post(self.url + "/api/show", json={"model": tag})
            if answer.status != 200:
                raise BadModel(tag, f"POST {self.url}/api/show answered HTTP {answer.status}")
            return answer.json()
        except LiveCallError as exc:
            raise BadModel(tag, f"/api/show: {_plain(exc)}") from None

    def each_shown(
        self, items: Iterable[tuple[str, Any]], check: Callable[[str, Any, Any], Any]
    ) -> Iterator[tuple[str, Any]]:
        """``(tag, check(tag, listed, shown))`` for each listed item, in order,
        or ``(tag, BadModel)``; ``workers`` requests at a time. Only the checked
        result is kept, never the whole answer."""

        def one(pair: tuple[str, Any]) -> tuple[str, Any]:
            tag, listed = pair
            try:
                return tag, check(tag, listed, self.show(tag))
            except BadModel as bad:
                return tag, bad

        with ThreadPoolExecutor(max_workers=self.settings.workers) as pool:
            yield from pool.map(one, items)


def _plain(exc: LiveCallError) -> str:
    return " ".join(str(exc).split())
