"""A stand-in for Ollama's HTTP API: ``GET /api/tags`` and ``POST /api/show``.

    python tests/servers/ollama_api.py --models MODELS.json [--port N] [--mode normal|malformed]

Payloads follow Ollama's API documentation. MODELS.json is re-read on every
request, so a test can add or remove models between runs; each model is
``{"name", "size", "digest", "modified_at", "details": {...},
"capabilities": [...], "model_info": {...}, "template"}``. ``--mode malformed``
answers ``/api/show`` with a payload whose ``capabilities`` is not a list.
Prints ``PORT <n>`` on stdout once it listens (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def load_models(path: Path) -> dict[str, dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {model["name"]: model for model in data.get("models", [])}


def tag_listing(model: dict) -> dict:
    return {
        "name": model["name"],
        "model": model["name"],
        "modified_at": model.get("modified_at", "2025-10-03T23:34:03.409490317-07:00"),
        "size": model.get("size", 0),
        "digest": model.get("digest", ""),
        "details": model.get("details", {}),
    }


def show_payload(model: dict) -> dict:
    return {
        "modelfile": f"FROM {model['name']}\n",
        "parameters": "temperature 0.6\nnum_ctx 4096",
        "template": model.get("template", ""),
        "details": {"parent_model": "", **model.get("details", {})},
        "model_info": model.get("model_info", {}),
        "capabilities": model.get("capabilities", ["completion"]),
        "modified_at": model.get("modified_at", "2025-10-03T23:34:03.409490317-07:00"),
        "license": "Apache License 2.0",
    }


class Handler(BaseHTTPRequestHandler):
    models_file: Path
    mode = "normal"

    def log_message(self, *args) -> None:  # quiet: tests read stdout
        pass

    def _send(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/api/tags":
            models = load_models(self.models_file)
            self._send(200, {"models": [tag_listing(m) for m in models.values()]})
        elif self.path in ("/", ""):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"Ollama is running")
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/api/show":
            self._send(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send(400, {"error": "invalid JSON"})
            return
        tag = request.get("model") or request.get("name")
        model = load_models(self.models_file).get(tag)
        if model is None:
            self._send(404, {"error": f"model '{tag}' not found"})
            return
        payload = show_payload(model)
        if self.mode == "malformed":
            payload["capabilities"] = "completion,vision"
        self._send(200, payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mode", choices=["normal", "malformed"], default="normal")
    args = parser.parse_args(argv)
    Handler.models_file = args.models
    Handler.mode = args.mode
    server = ThreadingHTTPServer((args.host, args.port), Handler)
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
