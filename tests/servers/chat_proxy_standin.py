"""A stand-in for the ImageWorks chat proxy's vLLM start, for tests.

    python tests/servers/chat_proxy_standin.py STATE_FILE PORT NAME MODEL_DIR

Like the proxy, it starts the server (``vllm_standin.py``) as a plain child,
without a new session, so the server's pid is not a process-group leader and
its worker is its child. It waits until the server answers, writes the state
in the proxy's format (five keys, atomically: a ``.tmp`` file, then a rename),
prints ``ready PID`` and then waits, as the proxy does, until it is killed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    state_file, port, name, model = Path(argv[0]), int(argv[1]), argv[2], argv[3]
    server = subprocess.Popen(
        [sys.executable, str(HERE / "vllm_standin.py"), "--model", model]
        + ["--host", "127.0.0.1", "--port", str(port), "--served-model-name", name],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                break
        except OSError:
            time.sleep(0.05)
    state = {
        "logical_name": name,
        "served_model_id": name,
        "port": port,
        "pid": server.pid,
        "started_at": time.time(),
    }
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, state_file)
    print(f"ready {server.pid}", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
