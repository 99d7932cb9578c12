"""import-ollama at scale: a server listing many tags (issue 14, "import at scale").

    uv run python bench/bench_import_ollama.py [--tags 10000] [--runs 3]

Starts an Ollama stand-in of its own (this script with ``--serve``: every
answer prepared in memory, HTTP/1.1 keep-alive, as Ollama serves) on
127.0.0.1, then times, in the same run and interleaved:

* the floor: a bare ``python -c`` that fetches ``/api/tags`` and every
  ``/api/show`` one after another on one connection, and parses each answer;
* ``imageworks-loader import-ollama`` into an empty registry (every tag added);
* the same import again (nothing changed: every tag compared, nothing written).

It prints each one's median seconds and peak RSS (the kernel's accounting of
the child, from ``wait4``), the ratio to the floor, and the targets:
the first import of 10,000 tags in at most 30 s and 256 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 30.0
TARGET_MB = 256.0

FLOOR = r"""
import http.client, json, sys
host, port = sys.argv[1], int(sys.argv[2])
conn = http.client.HTTPConnection(host, port, timeout=30)
conn.request("GET", "/api/tags")
tags = [m["name"] for m in json.loads(conn.getresponse().read())["models"]]
for tag in tags:
    conn.request("POST", "/api/show", body=json.dumps({"model": tag}),
                 headers={"Content-Type": "application/json"})
    json.loads(conn.getresponse().read())
print(len(tags))
"""


# --- the stand-in ------------------------------------------------------------------


def fake_models(count: int) -> list[dict]:
    """``count`` tags shaped like Ollama's answers (several families and sizes)."""
    families = [("qwen3", "8.2B"), ("llama3.1", "8.0B"), ("gemma3", "27.0B"), ("phi4", "14.7B")]
    quants = ["Q4_K_M", "Q5_K_M", "Q8_0", "F16"]
    models = []
    for index in range(count):
        family, size = families[index % len(families)]
        quant = quants[(index // len(families)) % len(quants)]
        digest = f"{index:064x}"
        models.append(
            {
                "name": f"{family}-v{index}:{size.lower()}",
                "size": 5_000_000_000 + index,
                "digest": digest,
                "modified_at": "2025-10-30T22:31:34.990500+00:00",
                "details": {
                    "format": "gguf",
                    "family": family,
                    "families": [family],
                    "parameter_size": size,
                    "quantization_level": quant,
                },
                "capabilities": ["completion", "tools"],
                "model_info": {
                    "general.architecture": family,
                    f"{family}.context_length": 40960,
                    f"{family}.embedding_length": 4096,
                },
                "template": "{{ .Prompt }}",
                "license": "Apache License 2.0\n" * 40,
            }
        )
    return models


def serve(count: int) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    models = fake_models(count)
    tags = json.dumps(
        {
            "models": [
                {k: m[k] for k in ("name", "size", "digest", "modified_at", "details")}
                | {"model": m["name"]}
                for m in models
            ]
        }
    ).encode()
    shows = {
        m["name"]: json.dumps(
            {
                "license": m["license"],
                "modelfile": f"FROM {m['name']}\n",
                "parameters": "num_ctx 4096",
                "template": m["template"],
                "details": m["details"],
                "model_info": m["model_info"],
                "capabilities": m["capabilities"],
                "modified_at": m["modified_at"],
            }
        ).encode()
        for m in models
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # As Ollama (Go) does: without it, headers and body written apart wait
        # 40 ms each for the client's delayed ACK, and that is all one measures.
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:
            pass

        def _send(self, body: bytes, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(tags)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            tag = json.loads(self.rfile.read(length) or b"{}").get("model")
            body = shows.get(tag)
            if body is None:
                self._send(b'{"error": "not found"}', 404)
            else:
                self._send(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


# --- measuring -------------------------------------------------------------------------


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Seconds, peak RSS in MB, and stdout+stderr tail of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
    )
    err = process.stderr.read() if process.stderr else b""
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.stderr:
        process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"{command[:4]} failed ({process.returncode}): {err.decode()[-800:]}")
    return elapsed, usage.ru_maxrss / 1024, err.decode()[-300:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="write the result rows here (run_all.py)")
    args = parser.parse_args()
    if args.serve:
        serve(args.tags)
        return 0

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("OLLAMA_HOST", None)
    env["OLLAMA_MODELS"] = "/nonexistent-ollama-models"
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--tags", str(args.tags)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    results: dict[str, list[tuple[float, float]]] = {"floor": [], "import": [], "again": []}
    try:
        line = server.stdout.readline() if server.stdout else ""
        port = int(line.split()[1])
        url = f"http://127.0.0.1:{port}"
        for _ in range(args.runs):
            work = Path(tempfile.mkdtemp(prefix="bench-import-ollama-"))
            try:
                registry = work / "registry"
                registry.mkdir()
                (registry / "model_registry.curated.json").write_text("[]\n")
                env["IMAGEWORKS_LOADER_CACHE"] = str(work / "cache")
                floor = [sys.executable, "-c", FLOOR, "127.0.0.1", str(port)]
                ours = [
                    sys.executable,
                    "-m",
                    "loader",
                    "import-ollama",
                    "--url",
                    url,
                    f"registry.dir={registry}",
                ]
                results["floor"].append(measured(floor, env)[:2])
                results["import"].append(measured(ours, env)[:2])
                results["again"].append(measured(ours, env)[:2])
            finally:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout:
            server.stdout.close()

    floor_s = statistics.median(s for s, _ in results["floor"])
    print(f"import-ollama, {args.tags:,} tags, {args.runs} runs (medians)")
    print(f"{'path':<34}{'seconds':>9}{'peak MB':>9}{'x floor':>9}   target")
    for key, label, target in (
        ("floor", "bare /api/tags + /api/show loop", ""),
        ("import", "import-ollama (all new)", f"<= {TARGET_S:g} s, <= {TARGET_MB:g} MB"),
        ("again", "import-ollama (nothing changed)", ""),
    ):
        seconds = statistics.median(s for s, _ in results[key])
        peak = max(m for _, m in results[key])
        print(f"{label:<34}{seconds:>9.2f}{peak:>9.0f}{seconds / floor_s:>9.2f}   {target}")
    first_s = statistics.median(s for s, _ in results["import"])
    first_mb = max(m for _, m in results["import"])
    met = first_s <= TARGET_S and first_mb <= TARGET_MB
    print(f"target {'met' if met else 'NOT met'} at {args.tags:,} tags")
    if args.json:
        label = f"import-ollama, {args.tags:,} tags (all new)"
        rows = [
            {
                "path": f"{label}, time",
                "floor": "(none)",
                "values": [s for s, _ in results["import"]],
                "unit": "s",
                "target": f"<= {TARGET_S:g} s",
                "limit": TARGET_S,
            },
            {
                "path": f"{label}, peak RSS",
                "floor": "(none)",
                "values": [m for _, m in results["import"]],
                "unit": "MB",
                "target": f"<= {TARGET_MB:g} MB",
                "limit": TARGET_MB,
            },
            {
                "path": f"import-ollama, {args.tags:,} tags, nothing changed",
                "floor": "bare /api/tags + /api/show loop",
                "values": [s / floor_s for s, _ in results["again"]],
                "target": "(none)",
                "limit": None,
            },
        ]
        args.json.write_text(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
