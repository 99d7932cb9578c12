"""A hostile HTTP server for the live operations' tests: Ollama's API and an
OpenAI-compatible chat endpoint that misbehave on purpose.

    python tests/servers/hostile.py --mode MODE [--target PATH] [--only-model TAG]
        [--models MODELS.json] [--answer TEXT [--repeat N] | --content JSON]
        [--life SECONDS]

It binds 127.0.0.1 (a free port), prints ``PORT <n>`` once it listens, and
exits by itself after ``--life`` seconds (default 120), whatever happens.

It serves ``GET /api/tags`` and ``POST /api/show`` (the models of MODELS.json,
as tests/servers/ollama_api.py does), ``GET /v1/models`` and ``POST
/v1/chat/completions`` (``--answer`` repeated ``--repeat`` times as the
message content, or ``--content``, a JSON value, as it is). Requests to
``--target`` (default: every path; with ``--only-model``, only that tag's
``/api/show``) get the mode instead:

  normal           the ordinary answer
  trickle-body     the headers, then the body one byte every 50 ms
  trickle-headers  the status line and headers one byte every 50 ms
  endless          a body without a length that never ends
  huge             a declared 500 MB body, sent in full if read
  huge-chunked     500 MB of JSON text, chunked (no length said up front)
  gzip-bomb        1 GB of zeros, gzip-compressed as it is sent
  deep-json        JSON nested 100,000 deep
  redirect         302 to the same path, for ever
  status500        HTTP 500 with a short body
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODES = (
    "normal",
    "trickle-body",
    "trickle-headers",
    "endless",
    "huge",
    "huge-chunked",
    "gzip-bomb",
    "deep-json",
    "redirect",
    "status500",
)
HUGE = 500 * 1024 * 1024
BOMB = 1024 * 1024 * 1024
BLOCK = 1024 * 1024


def load_models(path: Path | None) -> list[dict]:
    if path is None or not path.exists():
        return []
    return json.loads(path.read_text(encoding="utf-8")).get("models", [])


def tag_item(model: dict) -> dict:
    return {
        "name": model["name"],
        "model": model.get("model", model["name"]),
        "modified_at": model.get("modified_at", "2025-10-03T23:34:03.409490317-07:00"),
        "size": model.get("size", 0),
        "digest": model.get("digest", "0" * 64),
        "details": model.get("details", {}),
    }


def show_payload(model: dict) -> dict:
    return {
        "template": model.get("template", ""),
        "details": model.get("details", {}),
        "model_info": model.get("model_info", {}),
        "capabilities": model.get("capabilities", ["completion"]),
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "normal"
    target: str | None = None
    only_model: str | None = None
    models_file: Path | None = None
    content: object = "red"

    def log_message(self, *args) -> None:
        pass

    # --- the ordinary answers ---------------------------------------------------

    def _json(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _ordinary(self, request: dict) -> None:
        path = self.path.split("?")[0].rstrip("/")
        models = load_models(self.models_file)
        if path == "/api/tags":
            self._json(200, {"models": [tag_item(m) for m in models]})
        elif path == "/api/show":
            tag = request.get("model") or request.get("name")
            found = [m for m in models if m["name"] == tag]
            if found:
                self._json(200, show_payload(found[-1]))
            else:
                self._json(404, {"error": f"model '{tag}' not found"})
        elif path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "any", "object": "model"}]})
        elif path == "/v1/chat/completions":
            message = {"role": "assistant", "content": self.content}
            self._json(200, {"choices": [{"index": 0, "message": message}]})
        else:
            self._json(404, {"error": "not found"})

    # --- the hostile ones -----------------------------------------------------------

    def _raw(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def _head(self, extra: str = "", length: int | None = None, status: str = "200 OK") -> bytes:
        size = "" if length is None else f"Content-Length: {length}\r\n"
        return (
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{size}{extra}\r\n"
        ).encode()

    def _trickle(self, data: bytes) -> None:
        for byte in data:
            self._raw(bytes([byte]))
            time.sleep(0.05)

    def _chunk(self, data: bytes) -> None:
        self._raw(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _hostile(self) -> None:
        self.close_connection = True
        mode = self.mode
        body = b'{"models": []}' + b" " * 4096
        if mode == "trickle-body":
            self._raw(self._head(length=len(body)))
            self._trickle(body)
        elif mode == "trickle-headers":
            self._trickle(self._head(length=len(body)) + body)
        elif mode == "endless":
            self._raw(self._head(extra="Connection: close\r\n"))
            block = b" " * BLOCK
            while True:
                self._raw(block)
        elif mode == "huge":
            self._raw(self._head(length=HUGE))
            block = b" " * BLOCK
            for _ in range(HUGE // BLOCK):
                self._raw(block)
        elif mode == "huge-chunked":
            self._raw(self._head(extra="Transfer-Encoding: chunked\r\n"))
            self._chunk(b'{"models": [')
            block = b'{"name": "x:1"},' * (BLOCK // 16)
            for _ in range(HUGE // BLOCK):
                self._chunk(block)
        elif mode == "gzip-bomb":
            self._raw(self._head(extra="Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"))
            packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            zeros = bytes(BLOCK * 16)
            for _ in range(BOMB // len(zeros)):
                piece = packer.compress(zeros)
                if piece:
                    self._chunk(piece)
            self._chunk(packer.flush())
            self._raw(b"0\r\n\r\n")
        elif mode == "deep-json":
            deep = b"[" * 100_000 + b"]" * 100_000
            self._raw(self._head(length=len(deep)) + deep)
        elif mode == "redirect":
            self._raw(self._head(extra=f"Location: {self.path}\r\n", length=0, status="302 Found"))
        elif mode == "status500":
            error = b'{"error": "internal"}'
            self._raw(self._head(length=len(error), status="500 Internal Server Error") + error)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            request = {}
        path = self.path.split("?")[0].rstrip("/")
        hostile = self.mode != "normal" and (self.target is None or path == self.target)
        if hostile and self.only_model is not None:
            hostile = path == "/api/show" and request.get("model") == self.only_model
        try:
            if hostile:
                self._hostile()
            else:
                self._ordinary(request)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading: as it should

    do_GET = do_POST = _handle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, default="normal")
    parser.add_argument("--target", default=None)
    parser.add_argument("--only-model", default=None)
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--answer", default="red")
    parser.add_argument("--repeat", type=int, default=1, help="--answer, this many times")
    parser.add_argument("--content", default=None, help="the message content, as JSON")
    parser.add_argument("--life", type=float, default=120.0)
    args = parser.parse_args(argv)
    Handler.mode, Handler.target, Handler.only_model = args.mode, args.target, args.only_model
    Handler.models_file = args.models
    answer = args.answer * args.repeat
    Handler.content = json.loads(args.content) if args.content is not None else answer
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # Bounded life: gone after --life seconds even if nobody stops it.
    threading.Timer(args.life, lambda: os._exit(0)).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
