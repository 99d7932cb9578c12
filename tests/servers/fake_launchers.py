"""Misbehaving vLLM launch commands, for the orchestrator's tests.

    python tests/servers/fake_launchers.py MODE --port N --served-model-name ID [vLLM's flags]

Each mode serves the stand-in's API (``vllm_standin.make_handler``) on
127.0.0.1:PORT, but in a way a real launcher might that escapes a plain
process-group stop:

``escape``     forks a child that calls ``setsid()`` and serves; the launcher
               itself waits on it (so the recorded pid lives on).
``daemonize``  double-forks a server in its own session and exits 0, as a
               daemonizing launcher does (the server answers once the launcher
               has exited, as a real one loading a model would).
``chatty``     serves, and writes ``FAKE_CHATTY_BYTES`` (default 3 MB) of log
               lines as fast as it can, then ``chatty: done``.
``trickle-health``  answers ``/health`` with 200 and a huge Content-Length,
               then trickles the body one byte every 0.2 s, for ever.
``huge-models``  answers ``/v1/models`` with a 2 MB list.
``scrub-escape``  double-forks (a child calls ``setsid()``, forks the server
               and exits) and runs the server (mode ``serve``) with
               ``IMAGEWORKS_VLLM_INSTANCE`` removed from its environment; the
               launcher waits for ever. The server keeps neither a parent link
               to the launcher nor the token: only a cgroup still holds it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from http.server import ThreadingHTTPServer

from vllm_standin import make_handler

MODES = ("escape", "daemonize", "chatty", "trickle-health", "huge-models", "scrub-escape", "serve")


def serve(args: argparse.Namespace, handler=None) -> None:
    served_id = args.served_model_name or "model"
    handler = handler or make_handler(served_id, args.model, 4096, {"healthy": True})
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    print(f"fake launcher: pid {os.getpid()} serving on {args.port}", flush=True)
    server.serve_forever()


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return False
    return text[text.rindex(")") + 2] not in "ZX"


def trickling_handler(args: argparse.Namespace):
    base = make_handler(args.served_model_name, args.model, 4096, {"healthy": True})

    class Trickle(base):
        def do_GET(self):
            if self.path not in ("/health", "/v1/health"):
                return super().do_GET()
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
            while True:
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)

    return Trickle


def huge_models_handler(args: argparse.Namespace):
    base = make_handler(args.served_model_name, args.model, 4096, {"healthy": True})

    filler = [{"id": f"m{i}", "object": "model"} for i in range(60_000)]
    listed = [{"id": args.served_model_name, "object": "model"}, *filler]
    body = json.dumps({"object": "list", "data": listed}).encode()

    class Huge(base):
        def do_GET(self):
            if self.path != "/v1/models":
                return super().do_GET()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client stops reading at its cap
                self.wfile.write(body)

    return Huge


def chatter(total: int) -> None:
    line = b"INFO: " + b"x" * 90 + b"\n"
    written = 0
    while written < total:
        os.write(1, line * 100)
        written += len(line) * 100
    print("chatty: done", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fake_launchers")
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--served-model-name")
    parser.add_argument("--model", default="model")
    args, _ = parser.parse_known_args(argv)
    print(f"fake launcher: {args.mode}, pid {os.getpid()}", flush=True)
    if args.mode == "escape":
        child = os.fork()
        if child == 0:
            os.setsid()
            serve(args)
        os.waitpid(child, 0)
        return 0
    if args.mode == "daemonize":
        launcher = os.getpid()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                # Loading a model takes a while: the launcher is gone before this answers.
                while running(launcher):
                    time.sleep(0.01)
                serve(args)
            os._exit(0)
        return 0
    if args.mode == "chatty":
        total = int(os.environ.get("FAKE_CHATTY_BYTES", str(3_000_000)))
        threading.Thread(target=chatter, args=(total,), daemon=True).start()
        serve(args)
    if args.mode == "trickle-health":
        serve(args, trickling_handler(args))
    if args.mode == "huge-models":
        serve(args, huge_models_handler(args))
    if args.mode == "serve":
        serve(args)
    if args.mode == "scrub-escape":
        child = os.fork()
        if child == 0:
            os.setsid()
            if os.fork() == 0:
                env = {k: v for k, v in os.environ.items() if k != "IMAGEWORKS_VLLM_INSTANCE"}
                argv = [sys.executable, os.path.abspath(__file__), "serve", *argv[1:]]
                os.execve(sys.executable, argv, env)
            os._exit(0)
        os.waitpid(child, 0)
        while True:  # the launcher lives on, as the server's recorded pid
            time.sleep(60)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
