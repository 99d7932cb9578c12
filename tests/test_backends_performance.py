"""show-backends against real servers on 127.0.0.1, record-performance with
concurrent recorders, a sample from a passing probe, and probe tasks for vLLM
entries on their own port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import DISCOVERED, ROOT, read_json
from probe_support import FLORENCE, QWEN3, QWEN_VL, free_port, point_at, stand_in

from loader.probe.performance import summarize


@pytest.fixture
def run(capsys):
    from loader.frontdoors.cli import main

    def call(folder, *args: str):
        code = main([*args, f"registry.dir={folder}"])
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


# --- show-backends ----------------------------------------------------------------


def test_show_backends_counts_entries_and_asks_each_endpoint_once(run, demo_registry, tmp_path):
    with stand_in(tmp_path / "server", mode="honest", models=[QWEN_VL]) as server:
        point_at(demo_registry, QWEN_VL, server.port)
        point_at(demo_registry, QWEN3, free_port())  # nothing listens there
        code, out, err = run(demo_registry, "show-backends", "--json")
        assert code == 0, err
        rows = {r["endpoint"]: r for r in json.loads(out)}
        served = rows[server.url]
        assert served["backend"] == "vllm" and served["entries"] == 1
        assert served["answers"] is True and served["status"] == 200
        assert served["checked"] == server.url + "/models"
        (down,) = [r for r in rows.values() if QWEN3 in r["names"]]
        assert down["answers"] is False and "connection failed" in down["detail"]
        assert sum(r["entries"] for r in rows.values()) == 5  # every demo entry, once

        code, table, _ = run(demo_registry, "show-backends")
        lines = table.splitlines()
        assert lines[0].split() == ["BACKEND", "ENDPOINT", "ENTRIES", "ANSWERS"]
        (line,) = [ln for ln in lines if server.url in ln]
        assert line.split()[:4] == ["vllm", server.url, "1", "yes"]


def test_a_silent_server_is_given_up_on_within_the_bound(run, demo_registry):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        point_at(demo_registry, QWEN_VL, silent.getsockname()[1])
        started = time.monotonic()
        code, out, err = run(demo_registry, "show-backends", "--json", "backends_check.timeout_s=1")
        assert code == 0, err
        assert time.monotonic() - started < 30  # bounded (generous under load)
    (row,) = [r for r in json.loads(out) if QWEN_VL in r["names"]]
    assert row["answers"] is False and "within 1 s" in row["detail"]


# --- performance ------------------------------------------------------------------


def test_the_summary_follows_the_imageworks_formula():
    samples = [
        {"ttft_ms": 100.0, "tokens_generated": 11, "duration_ms": 1100.0},
        {"ttft_ms": 300.0, "tokens_generated": 1, "duration_ms": 800.0},  # max(0, 1) = 1
        {"ttft_ms": 50.0, "tokens_generated": 5, "duration_ms": 40.0},  # duration <= ttft
        {"ttft_ms": None, "tokens_generated": 9, "duration_ms": 900.0},
    ]
    summary = summarize(samples)
    assert summary["rolling_samples"] == 4
    assert summary["ttft_ms_avg"] == pytest.approx(150.0)
    assert summary["throughput_toks_per_s_avg"] == pytest.approx((10.0 + 2.0) / 2)
    assert summary["last_sample"] == samples[-1]


def test_record_performance_keeps_the_last_window_and_metrics_shows_it(run, demo_registry):
    for ttft in (10, 20, 30, 40):
        code, _, err = run(
            demo_registry, "record-performance", QWEN3, "--ttft-ms", str(ttft),
            "--tokens", "11", "--duration-ms", "1010", "performance.window=3",
        )  # fmt: skip
        assert code == 0, err
    code, out, err = run(demo_registry, "metrics", QWEN3)
    assert code == 0, err
    performance = json.loads(out)["performance"]
    assert performance["rolling_samples"] == 3
    assert performance["ttft_ms_avg"] == pytest.approx(30.0)
    assert performance["last_sample"]["ttft_ms"] == 40.0
    stored = next(e for e in read_json(demo_registry / DISCOVERED) if e["name"] == QWEN3)
    assert stored["performance"]["rolling_samples"] == 3


RECORDER = """
import sys
from loader.config import load_config
from loader.performance import record_performance
from loader.registry import Registry
registry = Registry(load_config([f"registry.dir={sys.argv[1]}"]))
for i in range(int(sys.argv[3])):
    record_performance(sys.argv[2], ttft_ms=10.0, tokens=5, duration_ms=100.0, registry=registry)
"""


def test_concurrent_recorders_lose_no_sample(demo_registry):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RECORDER, str(demo_registry), QWEN3, "4"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    stored = next(e for e in read_json(demo_registry / DISCOVERED) if e["name"] == QWEN3)
    assert stored["performance"]["rolling_samples"] == 16
    samples = json.loads((demo_registry / ".imageworks-state/performance-samples.json").read_text())
    assert len(samples[QWEN3]) == 16


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("--ttft-ms", "-1", "--duration-ms", "5"), "ttft_ms: not a finite number >= 0"),
        (("--tokens", "3"), "duration_ms: missing"),
    ],
)
def test_bad_samples_are_refused_and_nothing_is_written(run, demo_registry, args, expect):
    code, out, err = run(demo_registry, "record-performance", QWEN3, *args)
    assert code == 1 and out == "" and expect in err
    assert not (demo_registry / ".imageworks-state").exists()


def test_a_passing_probe_records_one_sample(run, demo_registry, tmp_path):
    with stand_in(tmp_path / "server", mode="honest", models=[QWEN_VL]) as server:
        point_at(demo_registry, QWEN_VL, server.port)
        code, _, err = run(demo_registry, "probe-vision", QWEN_VL)
        assert code == 0, err
    code, out, _ = run(demo_registry, "metrics", QWEN_VL)
    performance = json.loads(out)["performance"]
    assert performance["rolling_samples"] == 1
    assert performance["last_sample"]["duration_ms"] > 0
    assert performance["last_sample"]["ttft_ms"] is None


# --- probe tasks for vLLM servers of their own --------------------------------------


def test_a_vllm_entry_on_its_own_port_gets_a_probe_task(demo_registry, tmp_path):
    from loader.config import load_config
    from loader.pipeline.graph import build_graph
    from loader.pipeline.operation_tasks import probe_candidates, serves_itself
    from loader.registry.core import Registry

    models = tmp_path / "models" / "microsoft" / "Florence-2-large"
    models.mkdir(parents=True)
    (models / "config.json").write_text("{}")
    (models / "model.safetensors").write_bytes(b"w")

    def candidates(port: int) -> list[str]:
        point_at(demo_registry, FLORENCE, port)
        cfg = load_config([f"registry.dir={demo_registry}", f"paths.models={tmp_path / 'models'}"])
        graph = build_graph(registry=Registry(cfg))
        assert FLORENCE in graph.artifacts
        return probe_candidates(graph)

    assert FLORENCE in candidates(24002)  # beside the orchestrated 24001: a server of its own
    assert FLORENCE not in candidates(24001)  # the orchestrator's port, and not desired
    assert not serves_itself({"backend_config": {"port": 0}}, 24001)  # 0: no port
    assert serves_itself({"backend_config": {"base_url": "http://gpu:9000/v1"}}, 24001)
