"""The vision probe: prove that a model really sees images, and record it.

The built-in probe sends solid-colour squares in colours drawn at random and
asks for each colour in one word. A model that ignores the image names the
right one once in six per round, so ``probe.rounds`` rounds stop a guesser
with odds (1/6)^rounds. The result is stored in the discovered layer under
``probes.vision`` (a dynamic field), failed probes included.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loader.config_schema import ProbeConfig
from loader.errors import ProbeInputError
from loader.literal import literal
from loader.livecall import Limits, LiveCallError, LiveClient
from loader.probe.images import (
    COLOURS,
    PNG_MAGIC,
    ProbeImage,
    builtin_images,
    image_mime,
    solid_png,
    user_image,
)
from loader.registry.core import Registry, default_registry
from loader.registry.service import SelectedModel, select_model

if TYPE_CHECKING:
    from loader.config import Config

__all__ = [
    "COLOURS",
    "PNG_MAGIC",
    "PROBE_VERSION",
    "ProbeImage",
    "ProbeResult",
    "image_mime",
    "run_vision_probe",
    "solid_png",
]

# Bump when the method changes, so results recorded by an older one are redone.
PROBE_VERSION = 1

EXCERPT_CHARS = 160
# The most of an answer a result records; its length and sha256 say the rest.
RECORDED_CHARS = 2048


# --- judging the answer -------------------------------------------------------

_THINKING = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)


def visible_answer(text: str) -> str:
    """The answer without a reasoning model's ``<think>`` block."""
    return _THINKING.sub("", text).strip()


def names_word(answer: str, word: str) -> bool:
    """``word`` appears in ``answer`` as a whole word, ignoring case."""
    pattern = r"(?<!\w)" + re.escape(word.strip()) + r"(?!\w)"
    return re.search(pattern, answer, re.IGNORECASE) is not None


def names_colour(answer: str, colour: str) -> bool:
    """The answer names ``colour`` and none of the other probe colours, so
    listing every colour cannot pass."""
    named = {c for c in COLOURS if names_word(answer, c)}
    return named == {colour}


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- settings and result ------------------------------------------------------


# The ``probe`` config group (``conf/probe/default.yaml``), declared and
# checked in the config schema; ``registry.cfg.probe`` reads it.
ProbeSettings = ProbeConfig


def config_sha256(cfg: Config) -> str:
    """A digest of the probe config, so a changed setting can trigger a re-probe."""
    text = json.dumps(cfg.get("probe") or {}, sort_keys=True)
    return hashlib.sha256(f"{PROBE_VERSION}\n{text}".encode()).hexdigest()


@dataclass
class ProbeResult:
    """What one probe found; ``to_json()`` is what is printed and recorded.

    The top-level ``image``/``expected``/``answer``/``latency_ms`` describe the
    deciding request (the one that failed, else the last); ``rounds`` lists all.
    ``failure`` is null or one of: connection, timeout, http, malformed, empty,
    wrong_answer. ``answer`` is at most ``RECORDED_CHARS`` of the answer;
    ``answer_chars`` and ``answer_sha256`` describe the whole of it.
    """

    vision_ok: bool
    latency_ms: float | None
    notes: str
    probe_version: int
    timestamp: str
    model: str
    served_model_id: str
    endpoint: str
    image: str
    expected: str | None
    answer: str | None
    failure: str | None = None
    answer_chars: int | None = None
    answer_sha256: str | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)
    aggregate_sha256: str | None = None
    config_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _Failed(Exception):
    """One request failed; ``kind`` goes to ``ProbeResult.failure``."""

    def __init__(self, kind: str, message: str, answer: str | None = None) -> None:
        super().__init__(" ".join(message.split()))  # one line on stderr, always
        self.kind, self.answer = kind, answer


# --- the request --------------------------------------------------------------


def _client(settings: ProbeSettings) -> LiveClient:
    """Every request bounded in total time and answer size; connection
    failures retried; a local model server never reached through a proxy."""
    limits = Limits(settings.timeout_s, settings.max_bytes, settings.connect_timeout_s)
    return LiveClient(limits, retries=settings.retries)


def _answer_text(body: Any) -> str:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("no choices[0].message.content") from None
    if isinstance(content, list):  # content parts, as some servers return them
        parts = []
        for part in content:
            text = part.get("text", "") if isinstance(part, dict) else None
            if not isinstance(text, str):
                raise ValueError("choices[0].message.content holds a part that is not text")
            parts.append(text)
        content = "".join(parts)
    if content is not None and not isinstance(content, str):
        raise ValueError(f"choices[0].message.content is a {type(content).__name__}, not text")
    return content or ""


def ask(
    client: LiveClient,
    chosen: SelectedModel,
    prompt: str,
    image: ProbeImage,
    settings: ProbeSettings,
) -> tuple[str, float]:
    """Send one question about ``image``; the visible answer and the latency in ms."""
    url = chosen.endpoint_url.rstrip("/") + "/chat/completions"
    content = [
        {"type": "text", "text": prompt},
        {"type": "image_url", "image_url": {"url": image.data_url()}},
    ]
    payload = {
        "model": chosen.internal_model_id,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": settings.max_tokens,
        "temperature": 0,
    }
    started = time.perf_counter()
    attempts = f"{settings.retries + 1} attempt{'s' if settings.retries else ''}"
    try:
        response = client.post(url, json=payload)
    except LiveCallError as exc:
        if exc.kind == "timeout":
            raise _Failed(
                "timeout",
                f"no answer from {url} within {settings.timeout_s:g} s (probe.timeout_s)",
            ) from None
        if exc.kind == "connection":
            reason = "connection refused" if "refused" in str(exc).lower() else f"{exc}"
            raise _Failed("connection", f"{reason} at {url} ({attempts})") from None
        if exc.kind == "too_large":
            raise _Failed(
                "malformed",
                f"answer from {url} larger than {settings.max_bytes:,} bytes (probe.max_bytes)",
            ) from None
        raise _Failed("malformed", str(exc)) from None
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    if response.status >= 400:
        body = excerpt(response.body[:4096].decode("utf-8", "replace")) or "(empty body)"
        raise _Failed("http", f"HTTP {response.status} from {url}: {body}")
    try:
        text = _answer_text(response.json())
    except LiveCallError:
        shown = excerpt(response.body[:4096].decode("utf-8", "replace"))
        raise _Failed("malformed", f"malformed JSON from {url}: {shown}") from None
    except ValueError as exc:
        raise _Failed("malformed", f"malformed reply from {url}: {exc}") from None
    answer = visible_answer(text)
    if not answer:
        raise _Failed("empty", f"empty answer from {url}", answer="")
    return answer, latency_ms


def _judge(image: ProbeImage, answer: str) -> None:
    """Raise ``_Failed`` unless the answer names what the image shows."""
    if image.expected is None:
        return
    builtin = image.label.startswith("builtin:")
    right = names_colour(answer, image.expected) if builtin else names_word(answer, image.expected)
    if not right:
        asked = (
            f"asked for the colour of a {image.expected} square"
            if builtin
            else f"asked about {image.label}, expecting {image.expected!r}"
        )
        raise _Failed("wrong_answer", f"{asked}; the model answered '{excerpt(answer)}'", answer)


def _recorded(answer: str | None) -> dict[str, Any]:
    """What a result keeps of an answer: an excerpt, its length and sha256."""
    if answer is None:
        return {"answer": None, "answer_chars": None, "answer_sha256": None}
    kept = answer if len(answer) <= RECORDED_CHARS else answer[: RECORDED_CHARS - 1] + "…"
    digest = hashlib.sha256(answer.encode("utf-8", "surrogatepass")).hexdigest()
    return {"answer": kept, "answer_chars": len(answer), "answer_sha256": digest}


def probe(
    chosen: SelectedModel, images: list[ProbeImage], settings: ProbeSettings, prompt: str
) -> tuple[list[dict[str, Any]], _Failed | None]:
    """Ask about each image in turn, stopping at the first failure. Each round
    records the answer as ``_recorded`` keeps it, never the whole of a long one."""
    rounds: list[dict[str, Any]] = []
    with _client(settings) as client:
        for image in images:
            record: dict[str, Any] = dict(image=image.label, expected=image.expected)
            record.update(_recorded(None), ok=False, latency_ms=None)
            rounds.append(record)
            try:
                answer, record["latency_ms"] = ask(client, chosen, prompt, image, settings)
                record.update(_recorded(answer))
                _judge(image, answer)
            except _Failed as failed:
                if failed.answer is not None:
                    record.update(_recorded(failed.answer))
                return rounds, failed
            record["ok"] = True
    return rounds, None


# --- the probe as a whole -----------------------------------------------------


def run_vision_probe(
    name: str,
    image_path: str | Path | None = None,
    *,
    expect: str | None = None,
    registry: Registry | None = None,
) -> ProbeResult:
    """Probe ``name`` and record the result under ``probes.vision``.

    Without ``image_path``, the built-in colour probe. With one, ``expect``
    (a word the answer must name) checks the answer; without it any non-empty
    answer passes, and ``notes`` says it was not checked. A model without the
    vision capability (``CapabilityError``) or an unusable image
    (``ProbeInputError``) raises before anything is sent or recorded; a probe
    that ran returns its result, passed or failed, and records it. The model's
    words are recorded literally (``loader.literal``): never configuration.
    """
    registry = registry or default_registry()
    settings = registry.cfg.probe
    chosen = select_model(name, require_capabilities=["vision"], registry=registry)
    if expect is not None and not str(expect).strip():
        raise ProbeInputError("--expect: empty word")
    if image_path is None:
        images, prompt = builtin_images(settings.rounds), settings.prompt
    else:
        image = user_image(image_path, expect, settings.max_image_bytes)
        images, prompt = [image], settings.image_prompt
    aggregate = registry.get(name).artifacts.aggregate_sha256
    timestamp = datetime.now(UTC).isoformat()

    rounds, failed = probe(chosen, images, settings, prompt)
    deciding = rounds[-1]
    if failed is not None:
        notes = str(failed)
    elif deciding["expected"] is None:
        notes = f"answer not checked (no --expect): {excerpt(deciding['answer'])}"
    else:
        notes = excerpt(deciding["answer"])
    result = ProbeResult(
        vision_ok=failed is None,
        latency_ms=deciding["latency_ms"],
        notes=notes,
        probe_version=PROBE_VERSION,
        timestamp=timestamp,
        model=name,
        served_model_id=chosen.internal_model_id,
        endpoint=chosen.endpoint_url,
        image=deciding["image"],
        expected=deciding["expected"],
        answer=deciding["answer"],
        failure=failed.kind if failed else None,
        answer_chars=deciding["answer_chars"],
        answer_sha256=deciding["answer_sha256"],
        rounds=rounds,
        aggregate_sha256=aggregate,
        config_sha256=config_sha256(registry.cfg),
    )
    from loader.registry.hosts import host_name, record

    entry = registry.get(name)
    entry.probes.vision = literal(result.to_json())
    record(
        entry,
        host_name(registry.cfg),
        "probe",
        {"vision_ok": result.vision_ok, "at": timestamp, "endpoint": chosen.endpoint_url},
    )
    registry.save()
    return result
