"""The vision probe: prove that a model really sees images, and record it.

The built-in probe sends solid-colour squares in colours drawn at random and
asks for each colour in one word. A model that ignores the image names the
right one once in six per round, so ``probe.rounds`` rounds stop a guesser
with odds (1/6)^rounds. The result is stored in the discovered layer under
``probes.vision`` (a dynamic field), failed probes included.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import struct
import time
import zlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ProbeInputError, RegistryLoadError
from .registry import Registry, default_registry
from .service import SelectedModel, select_model

if TYPE_CHECKING:
    import httpx

    from .config import Config

__all__ = ["COLOURS", "PROBE_VERSION", "ProbeResult", "run_vision_probe"]

# Bump when the method changes, so results recorded by an older one are redone.
PROBE_VERSION = 1

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 180, 60),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 40),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
}

EXCERPT_CHARS = 160
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- images -----------------------------------------------------------------


def solid_png(rgb: tuple[int, int, int], size: int = 64) -> bytes:
    """A ``size``×``size`` PNG of one colour (8-bit RGB, no filtering)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    row = b"\x00" + bytes(rgb) * size  # filter byte 0, then the pixels
    pixels = zlib.compress(row * size, 9)
    return PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def image_mime(data: bytes) -> str | None:
    """The MIME type by magic bytes (PNG, JPEG, WebP, GIF), never by file name."""
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


@dataclass(frozen=True)
class ProbeImage:
    """One image to ask about: its label in the result, bytes, and what it shows."""

    label: str  # a path, or builtin:<colour>
    data: bytes
    mime: str
    expected: str | None

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def builtin_images(rounds: int) -> list[ProbeImage]:
    """``rounds`` squares, each colour drawn independently at random."""
    colours = [secrets.choice(list(COLOURS)) for _ in range(rounds)]
    return [ProbeImage(f"builtin:{c}", solid_png(COLOURS[c]), "image/png", c) for c in colours]


def user_image(path: str | Path, expect: str | None) -> ProbeImage:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ProbeInputError(f"{path}: image not found") from None
    except OSError as exc:
        raise ProbeInputError(f"{path}: cannot read the image: {exc.strerror or exc}") from None
    mime = image_mime(data)
    if mime is None:
        raise ProbeInputError(f"{path}: not an image (its content is not PNG, JPEG, WebP or GIF)")
    return ProbeImage(str(path), data, mime, expect)


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


# setting, whole number?, bound
_NUMBER_RULES = (
    ("timeout_s", False, "> 0"),
    ("connect_timeout_s", False, "> 0"),
    ("retries", True, "≥ 0"),
    ("max_tokens", True, "> 0"),
    ("rounds", True, "> 0"),
)


@dataclass(frozen=True)
class ProbeSettings:
    """The ``probe`` config group (``conf/probe/default.yaml``)."""

    timeout_s: float
    connect_timeout_s: float
    retries: int
    max_tokens: int
    rounds: int
    prompt: str
    image_prompt: str

    @classmethod
    def from_config(cls, cfg: Config) -> ProbeSettings:
        group = cfg.get("probe") or {}
        values: dict[str, Any] = {}
        for name, whole, bound in _NUMBER_RULES:
            value = group.get(name)
            fits = isinstance(value, int | float) and not isinstance(value, bool)
            fits = fits and (value >= 0 if bound == "≥ 0" else value > 0)
            if not fits or (whole and value != int(value)):
                kind = "a whole number" if whole else "a number"
                raise RegistryLoadError(f"config probe.{name}: must be {kind} {bound}: {value!r}")
            values[name] = int(value) if whole else float(value)
        for name in ("prompt", "image_prompt"):
            if not str(group.get(name) or "").strip():
                raise RegistryLoadError(f"config probe.{name}: empty")
            values[name] = str(group[name])
        return cls(**values)


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
    wrong_answer.
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


def _client(settings: ProbeSettings) -> httpx.Client:
    import httpx

    timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
    # The transport retries only failed connections; an explicit transport also
    # keeps a proxy from the environment off the way to a local model server.
    return httpx.Client(timeout=timeout, transport=httpx.HTTPTransport(retries=settings.retries))


def _answer_text(body: Any) -> str:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("no choices[0].message.content") from None
    if isinstance(content, list):  # content parts, as some servers return them
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content is not None and not isinstance(content, str):
        raise ValueError(f"choices[0].message.content is a {type(content).__name__}")
    return content or ""


def ask(
    client: httpx.Client,
    chosen: SelectedModel,
    prompt: str,
    image: ProbeImage,
    settings: ProbeSettings,
) -> tuple[str, float]:
    """Send one question about ``image``; the visible answer and the latency in ms."""
    import httpx

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
    except httpx.ConnectTimeout:
        raise _Failed(
            "timeout",
            f"connecting to {url} timed out after {settings.connect_timeout_s:g} s "
            f"({attempts}; probe.connect_timeout_s)",
        ) from None
    except httpx.TimeoutException:
        raise _Failed(
            "timeout", f"no answer from {url} within {settings.timeout_s:g} s (probe.timeout_s)"
        ) from None
    except httpx.ConnectError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else f"cannot connect: {exc}"
        raise _Failed("connection", f"{reason} at {url} ({attempts})") from None
    except httpx.HTTPError as exc:
        raise _Failed("connection", f"{url}: {type(exc).__name__}: {exc}") from None
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    if response.status_code >= 400:
        body = excerpt(response.text) or "(empty body)"
        raise _Failed("http", f"HTTP {response.status_code} from {url}: {body}")
    try:
        text = _answer_text(response.json())
    except json.JSONDecodeError:
        raise _Failed("malformed", f"malformed JSON from {url}: {excerpt(response.text)}") from None
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


def probe(
    chosen: SelectedModel, images: list[ProbeImage], settings: ProbeSettings, prompt: str
) -> tuple[list[dict[str, Any]], _Failed | None]:
    """Ask about each image in turn, stopping at the first failure."""
    rounds: list[dict[str, Any]] = []
    with _client(settings) as client:
        for image in images:
            record = dict(image=image.label, expected=image.expected, answer=None, ok=False)
            record["latency_ms"] = None
            rounds.append(record)
            try:
                record["answer"], record["latency_ms"] = ask(
                    client, chosen, prompt, image, settings
                )
                _judge(image, record["answer"])
            except _Failed as failed:
                if failed.answer is not None:
                    record["answer"] = failed.answer
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
    that ran returns its result, passed or failed, and records it.
    """
    registry = registry or default_registry()
    settings = ProbeSettings.from_config(registry.cfg)
    chosen = select_model(name, require_capabilities=["vision"], registry=registry)
    if expect is not None and not str(expect).strip():
        raise ProbeInputError("--expect: empty word")
    if image_path is None:
        images, prompt = builtin_images(settings.rounds), settings.prompt
    else:
        images, prompt = [user_image(image_path, expect)], settings.image_prompt
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
        rounds=rounds,
        aggregate_sha256=aggregate,
        config_sha256=config_sha256(registry.cfg),
    )
    from .hosts import host_name, record

    entry = registry.get(name)
    entry.probes.vision = result.to_json()
    record(
        entry,
        host_name(registry.cfg),
        "probe",
        {"vision_ok": result.vision_ok, "at": timestamp, "endpoint": chosen.endpoint_url},
    )
    registry.save()
    return result
