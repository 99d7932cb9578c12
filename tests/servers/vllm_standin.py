"""A stand-in for vLLM's OpenAI server, for tests (vLLM needs a GPU).

    python tests/servers/vllm_standin.py --model DIR --port N [vLLM's other flags]

It accepts vLLM's launch arguments (unknown flags are logged and ignored),
checks that the model folder and chat template exist, starts a worker child
in its own process group (as vLLM's engine process does), and serves
``/health``, ``/v1/health``, ``/v1/models`` (with ``max_model_len``) and
``/v1/chat/completions``.

Test modes, from ``--standin-mode`` or the ``VLLM_STANDIN_MODE`` variable:
``crash`` (exit 1 at start, its worker left running), ``never-healthy``
(health answers 503 forever), ``slow`` (waits ``VLLM_STANDIN_DELAY`` seconds,
default 2, before listening), ``ignore-sigterm`` (only SIGKILL stops it).
SIGUSR1 makes a running server unhealthy from then on.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODES = ("normal", "crash", "never-healthy", "slow", "ignore-sigterm")


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="vllm_standin")
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    parser.add_argument("--max-model-len", type=int)
    parser.add_argument("--chat-template")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--standin-mode", choices=MODES)
    return parser.parse_known_args(argv)


def worker() -> None:
    """The engine-core stand-in: idles until its group is signalled."""
    while True:
        time.sleep(60)


def max_model_len(args: argparse.Namespace) -> int:
    if args.max_model_len:
        return args.max_model_len
    try:
        config = json.loads((Path(args.model) / "config.json").read_text())
        return int(config["max_position_embeddings"])
    except (OSError, ValueError, KeyError, TypeError):
        return 4096


def make_handler(served_id: str, model: str, length: int, status: dict[str, bool]):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            print("INFO:", self.address_string(), fmt % args, flush=True)

        def _json(self, status: int, body) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            healthy = status["healthy"]
            if self.path in ("/health", "/v1/health"):
                self._json(200 if healthy else 503, {} if healthy else {"error": "loading"})
            elif self.path == "/v1/models":
                listed = [
                    {
                        "id": served_id,
                        "object": "model",
                        "owned_by": "vllm",
                        "root": model,
                        "max_model_len": length,
                    }
                ]
                self._json(200, {"object": "list", "data": listed if healthy else []})
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self):
            if self.path != "/v1/chat/completions":
                self._json(404, {"error": "not found"})
                return
            size = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(size) or b"{}")
            if request.get("model") != served_id:
                self._json(404, {"error": f"model {request.get('model')!r} not served"})
                return
            text = f"stand-in reply from {served_id}"
            self._json(
                200,
                {
                    "id": "chatcmpl-standin",
                    "object": "chat.completion",
                    "model": served_id,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                },
            )

    return Handler


def main(argv: list[str]) -> int:
    if argv == ["--worker"]:
        worker()
    args, unknown = parse(argv)
    mode = args.standin_mode or os.environ.get("VLLM_STANDIN_MODE") or "normal"
    print(f"INFO: vllm stand-in pid {os.getpid()} mode {mode} argv {argv}", flush=True)
    if unknown:
        print(f"WARNING: ignoring flags {unknown}", flush=True)
    if not Path(args.model).is_dir():
        print(f"OSError: model folder not found: {args.model}", flush=True)
        return 1
    if args.chat_template and not Path(args.chat_template).is_file():
        print(f"ValueError: chat template not found: {args.chat_template}", flush=True)
        return 1
    subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"])
    if mode == "crash":
        print("RuntimeError: CUDA out of memory (stand-in crash at start)", flush=True)
        return 1
    if mode == "slow":
        time.sleep(float(os.environ.get("VLLM_STANDIN_DELAY", "2")))
    if mode == "ignore-sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    served_id = args.served_model_name or args.model
    status = {"healthy": mode != "never-healthy"}
    signal.signal(signal.SIGUSR1, lambda *_: status.update(healthy=False))
    handler = make_handler(served_id, args.model, max_model_len(args), status)
    server = ThreadingHTTPServer((args.host, args.port), handler)
    print(f"INFO: Uvicorn running on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
