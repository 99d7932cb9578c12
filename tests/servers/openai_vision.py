"""A stand-in for a vision model behind an OpenAI-compatible server (vLLM, Ollama's /v1).

    python tests/servers/openai_vision.py [--port N] [--mode MODE] [--model ID ...]

It binds 127.0.0.1 (port 0 picks a free one), prints ``PORT <n>`` on stdout
once it listens, and serves ``GET /v1/models`` and ``POST /v1/chat/completions``.
An honest model really decodes the image it is sent (PNG with the standard
library; JPEG, WebP and GIF with Pillow) and names the colour of its mean
pixel by hue, saturation and brightness. Modes:

  honest     decodes the image and names its colour
  blind      answers --answer without looking at the image
  error500   HTTP 500 with a short JSON body
  slow       sleeps --delay seconds, then answers honestly
  malformed  HTTP 200 with a body that is not JSON
  empty      a well-formed reply whose content is ""

A model id not in --model gets vLLM's 404. ``--log FILE`` appends one JSON
line per chat request (path, model, declared MIME, decoded format, colour ...).
"""

from __future__ import annotations

import argparse
import base64
import colorsys
import io
import json
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("honest", "blind", "error500", "slow", "malformed", "empty")


class BadImage(Exception):
    """The request's image cannot be decoded, or its MIME type lies."""


def content_format(data: bytes) -> str | None:
    """The format as a decoder sees it, not as the loader's own check does:
    the PNG signature for the standard-library decoder, else Pillow's opinion."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return (image.format or "").lower() or None
    except (UnidentifiedImageError, OSError):
        return None


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def png_mean_rgb(data: bytes) -> tuple[int, int, int]:
    """Decode an 8-bit grey, RGB or RGBA PNG (any filters) with the standard library."""
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    if header is None:
        raise BadImage("PNG without IHDR")
    width, height, depth, colour_type, _, _, interlace = header
    channels = {0: 1, 2: 3, 6: 4}.get(colour_type)
    if depth != 8 or channels is None or interlace:
        raise BadImage(f"PNG colour type {colour_type}, depth {depth} not supported here")
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    totals = [0, 0, 0]
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            predictor = (0, left, up, (left + up) // 2, _paeth(left, up, up_left))[kind]
            line[i] = (line[i] + predictor) & 0xFF
        for i in range(0, stride, channels):
            pixel = line[i : i + channels]
            rgb = (pixel[0],) * 3 if channels == 1 else pixel[:3]
            for c in range(3):
                totals[c] += rgb[c]
        previous = line
    count = width * height
    return tuple(round(t / count) for t in totals)


def pillow_mean_rgb(data: bytes) -> tuple[int, int, int]:
    try:
        from PIL import Image
    except ImportError:
        raise BadImage("this stand-in decodes only PNG without Pillow") from None

    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=rgb.width * rgb.height)
    total = sum(count for count, _ in colours)
    return tuple(round(sum(n * c[i] for n, c in colours) / total) for i in range(3))


# Hue bands in degrees, as a person would name them.
HUES = ((20, "red"), (45, "orange"), (75, "yellow"), (165, "green"), (195, "cyan"),
        (255, "blue"), (330, "purple"), (360, "red"))  # fmt: skip


def colour_name(rgb: tuple[int, int, int]) -> str:
    """Name a colour from its hue, saturation and brightness."""
    hue, saturation, value = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    if value < 0.2:
        return "black"
    if saturation < 0.2:
        return "white" if value > 0.8 else "grey"
    return next(name for limit, name in HUES if hue * 360 < limit)


def see(data_url: str) -> dict:
    """What an honest model sees in a ``data:`` URL."""
    head, _, payload = data_url.partition(",")
    if not head.startswith("data:") or not head.endswith(";base64"):
        raise BadImage(f"not a base64 data URL: {head[:40]!r}")
    declared = head[5 : -len(";base64")]
    data = base64.b64decode(payload, validate=True)
    found = content_format(data)
    if found is None:
        raise BadImage("the image is not PNG, JPEG, WebP or GIF")
    if declared != f"image/{found}":
        raise BadImage(f"declared {declared} but the content is {found}")
    rgb = png_mean_rgb(data) if found == "png" else pillow_mean_rgb(data)
    return {"declared": declared, "format": found, "rgb": rgb, "colour": colour_name(rgb)}


def parse_request(body: dict) -> tuple[str, str]:
    """The prompt text and the image's data URL from one user message."""
    (message,) = body["messages"]
    if message["role"] != "user":
        raise BadImage("expected one user message")
    texts = [p["text"] for p in message["content"] if p["type"] == "text"]
    images = [p["image_url"]["url"] for p in message["content"] if p["type"] == "image_url"]
    if len(texts) != 1 or len(images) != 1:
        raise BadImage("expected one text part and one image_url part")
    return texts[0], images[0]


class Handler(BaseHTTPRequestHandler):
    server: StandIn

    def log_message(self, format: str, *args) -> None:  # quiet: tests read stdout
        pass

    def send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, data: dict) -> None:
        self.send(status, json.dumps(data).encode())

    def do_GET(self) -> None:
        if self.path != "/v1/models":
            return self.send_json(404, {"error": {"message": f"no route {self.path}"}})
        models = [{"id": m, "object": "model", "owned_by": "stand-in"} for m in self.server.models]
        self.send_json(200, {"object": "list", "data": models})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        record = {"path": self.path, "model": body.get("model")}
        for key in ("max_tokens", "temperature"):
            record[key] = body.get(key)
        try:
            self.answer(body, record)
        finally:
            self.server.log(record)

    def answer(self, body: dict, record: dict) -> None:
        options = self.server.options
        if self.path != "/v1/chat/completions":
            return self.send_json(404, {"error": {"message": f"no route {self.path}"}})
        if body.get("model") not in self.server.models:
            message = f"The model `{body.get('model')}` does not exist."
            return self.send_json(404, {"object": "error", "message": message, "code": 404})
        try:
            prompt, data_url = parse_request(body)
            seen = see(data_url)
        except (BadImage, KeyError, TypeError, ValueError) as exc:
            record["bad_request"] = str(exc)
            return self.send_json(400, {"object": "error", "message": str(exc), "code": 400})
        record.update(prompt=prompt, **{k: seen[k] for k in ("declared", "format", "colour")})
        mode = options.mode
        if mode == "error500":
            return self.send_json(500, {"object": "error", "message": "CUDA out of memory"})
        if mode == "malformed":
            return self.send(200, b'{"choices": [{"message": {"content": "Gre', "application/json")
        if mode == "slow":
            time.sleep(options.delay)
        content = {"blind": options.answer, "empty": ""}.get(mode, seen["colour"].capitalize())
        self.send_json(
            200,
            {
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
            },
        )


class StandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, options: argparse.Namespace) -> None:
        super().__init__(("127.0.0.1", options.port), Handler)
        self.options = options
        self.models = options.model or ["stand-in-model"]
        self._log_lock = threading.Lock()

    def log(self, record: dict) -> None:
        if not self.options.log:
            return
        with self._log_lock, open(self.options.log, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--mode", choices=MODES, default="honest")
    parser.add_argument("--model", action="append", help="a served model id (repeatable)")
    parser.add_argument("--answer", default="I cannot see images.", help="the blind answer")
    parser.add_argument("--delay", type=float, default=30.0, help="slow mode's delay, seconds")
    parser.add_argument("--log", help="append one JSON line per chat request here")
    options = parser.parse_args()
    server = StandIn(options)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
