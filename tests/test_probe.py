"""probe-vision against a real stand-in server that decodes the images it is sent."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import datetime, timedelta

import httpx
import pytest
from conftest import (
    CLI,
    CURATED,
    DISCOVERED,
    folder_digest,
    json_stream,
    read_json,
    run_cli,
)
from probe_support import (
    FLORENCE,
    OLLAMA_VL,
    OLLAMA_VL_TAG,
    QWEN3,
    QWEN_VL,
    SERVER,
    add_ollama_vision_entry,
    free_port,
    image_bytes,
    launch,
    point_at,
    set_args,
    stand_in,
    stop,
)

from loader.config import load_config
from loader.errors import CapabilityError, ProbeInputError
from loader.probe.vision import COLOURS, PROBE_VERSION, ProbeResult, run_vision_probe
from loader.registry.core import Registry

RESULT_KEYS = {
    "vision_ok",
    "latency_ms",
    "notes",
    "probe_version",
    "timestamp",
    "model",
    "served_model_id",
    "endpoint",
    "image",
    "expected",
    "answer",
    "answer_chars",
    "answer_sha256",
    "failure",
    "rounds",
    "aggregate_sha256",
    "config_sha256",
}


def on(registry) -> str:
    return f"registry.dir={registry}"


def entry(registry, layer, name):
    return next((e for e in read_json(registry / layer) if e["name"] == name), None)


def probe_cli(registry, name, port, *words):
    return run_cli("probe-vision", name, *words, *set_args(name, port), on(registry))


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def api_registry(registry, *overrides) -> Registry:
    # As the front doors do: a load writes no file until a save succeeds.
    return Registry(load_config([on(registry), *overrides]), defer_snapshot_refresh=True)


# --- the built-in probe, end to end -------------------------------------------------


def test_an_honest_model_passes_and_the_result_is_recorded(demo_registry, tmp_path):
    curated_before = (demo_registry / CURATED).read_bytes()
    discovered_before = read_json(demo_registry / DISCOVERED)
    with stand_in(tmp_path / "server") as server:
        result = probe_cli(demo_registry, QWEN_VL, server.port)
        requests = server.requests()
    assert result.returncode == 0, result.stderr
    printed = result.json()
    assert set(printed) == RESULT_KEYS
    assert printed["vision_ok"] is True and printed["failure"] is None
    assert printed["model"] == QWEN_VL and printed["served_model_id"] == QWEN_VL
    assert printed["endpoint"] == server.url
    assert printed["probe_version"] == PROBE_VERSION
    stamp = datetime.fromisoformat(printed["timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    aggregate = entry(demo_registry, DISCOVERED, QWEN_VL)["artifacts"]["aggregate_sha256"]
    assert printed["aggregate_sha256"] == aggregate and len(printed["config_sha256"]) == 64

    # two rounds (probe.rounds), each a random colour that the server really saw
    rounds = printed["rounds"]
    assert len(rounds) == 2 == len(requests)
    for round_, request in zip(rounds, requests, strict=True):
        assert round_["ok"] is True and round_["expected"] in COLOURS
        assert round_["image"] == f"builtin:{round_['expected']}"
        assert request["colour"] == round_["expected"]
        assert round_["answer"] == round_["expected"].capitalize()
        assert request["path"] == "/v1/chat/completions" and request["model"] == QWEN_VL
        assert request["declared"] == "image/png" and request["format"] == "png"
        assert request["temperature"] == 0 and request["max_tokens"] == 64
        assert "one word" in request["prompt"]
    assert printed["image"] == rounds[-1]["image"] and printed["answer"] == rounds[-1]["answer"]

    # recorded in the discovered layer, and nothing else changed there or in curated
    assert (demo_registry / CURATED).read_bytes() == curated_before
    discovered = read_json(demo_registry / DISCOVERED)
    recorded = entry(demo_registry, DISCOVERED, QWEN_VL)["probes"]["vision"]
    assert recorded == printed
    for row in discovered:
        row["probes"]["vision"] = None
        # this host's own record of the probe (issue 19)
        [mine] = row.pop("hosts").values() if row["name"] == QWEN_VL else [{"probe": None}]
        assert mine["probe"] is None or mine["probe"]["vision_ok"] is True
    assert discovered == discovered_before  # the --set port was not saved

    metrics = run_cli("metrics", QWEN_VL, on(demo_registry))
    assert metrics.returncode == 0 and metrics.json()["vision_probe"] == printed


FAILURES = {
    # mode: (server options, config words, failure kind, what the one stderr line says)
    "blind": ({"mode": "blind"}, [], "wrong_answer", "the model answered 'I cannot see images.'"),
    "lists-every-colour": (
        {"mode": "blind", "extra": ["--answer", "Red, green, blue, yellow, black or white"]},
        [],
        "wrong_answer",
        "the model answered 'Red, green, blue, yellow, black or white'",
    ),
    "http-500": ({"mode": "error500"}, [], "http", "HTTP 500 from {url}/chat/completions: "),
    "slow": (
        {"mode": "slow", "extra": ["--delay", "10"]},
        ["probe.timeout_s=1"],
        "timeout",
        "no answer from {url}/chat/completions within 1 s (probe.timeout_s)",
    ),
    "malformed-json": ({"mode": "malformed"}, [], "malformed", "malformed JSON from {url}"),
    "empty-answer": ({"mode": "empty"}, [], "empty", "empty answer from {url}/chat/completions"),
    "unknown-model": (
        {"models": ["some-other-model"]},
        [],
        "http",
        f"HTTP 404 from {{url}}/chat/completions: {{{{*The model `{QWEN_VL}` does not exist.",
    ),
}


@pytest.mark.parametrize("mode", list(FAILURES))
def test_each_failure_exits_1_names_its_cause_and_is_recorded(demo_registry, tmp_path, mode):
    options, words, kind, message = FAILURES[mode]
    curated_before = (demo_registry / CURATED).read_bytes()
    with stand_in(tmp_path / "server", **options) as server:
        result = probe_cli(demo_registry, QWEN_VL, server.port, *words)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith("imageworks-loader probe-vision: ")
    for fragment in message.format(url=server.url).split("*"):
        assert fragment in line
    printed = result.json()
    assert printed["vision_ok"] is False and printed["failure"] == kind
    assert line.endswith(printed["notes"])
    if kind == "wrong_answer":
        assert f"asked for the colour of a {printed['expected']} square; " in line
    assert entry(demo_registry, DISCOVERED, QWEN_VL)["probes"]["vision"] == printed
    assert (demo_registry / CURATED).read_bytes() == curated_before


def test_connection_refused_names_the_url_and_is_recorded(demo_registry):
    port = free_port()
    result = probe_cli(demo_registry, QWEN_VL, port, "probe.retries=0")
    assert result.returncode == 1
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    assert one_line(result.stderr).endswith(f"connection refused at {url} (1 attempt)")
    recorded = entry(demo_registry, DISCOVERED, QWEN_VL)["probes"]["vision"]
    assert recorded["failure"] == "connection" and recorded["answer"] is None


# --- refused before sending: nothing sent, no file changed ------------------------------


def test_a_text_only_model_is_refused_without_a_request(demo_registry, tmp_path):
    before = folder_digest(demo_registry)
    with stand_in(tmp_path / "server", models=[QWEN3]) as server:
        result = probe_cli(demo_registry, QWEN3, server.port)
        assert server.requests() == []
    assert result.returncode == 1 and result.stdout == ""
    assert one_line(result.stderr) == (
        f"imageworks-loader: error: model '{QWEN3}' lacks required capability 'vision'"
    )
    assert folder_digest(demo_registry) == before


@pytest.mark.parametrize("kind", ["missing", "folder", "text-named-png", "truncated"])
def test_an_unusable_image_is_refused_without_a_request(demo_registry, tmp_path, kind):
    image = tmp_path / "photo.png"
    if kind == "folder":
        image.mkdir()
    elif kind == "text-named-png":
        image.write_text("not a picture\n")
    elif kind == "truncated":
        image.write_bytes(b"\x89PN")
    reason = {"missing": "image not found", "folder": "cannot read the image: "}.get(
        kind, "not an image (its content is not PNG, JPEG, WebP or GIF)"
    )
    before = folder_digest(demo_registry)
    with stand_in(tmp_path / "server") as server:
        result = probe_cli(demo_registry, QWEN_VL, server.port, str(image), "--expect", "blue")
        assert server.requests() == []
    assert result.returncode == 1 and result.stdout == ""
    assert one_line(result.stderr).startswith(f"imageworks-loader: error: {image}: {reason}")
    assert folder_digest(demo_registry) == before


# --- user images ------------------------------------------------------------------------

MISLEADING = {"PNG": "photo.jpg", "JPEG": "photo.webp", "WEBP": "photo.png", "GIF": "photo.jpeg"}


@pytest.mark.parametrize("fmt", list(MISLEADING))
def test_the_mime_type_comes_from_the_content_not_the_name(demo_registry, tmp_path, fmt):
    image = tmp_path / MISLEADING[fmt]
    image.write_bytes(image_bytes(fmt, COLOURS["blue"]))
    with stand_in(tmp_path / "server") as server:
        result = probe_cli(demo_registry, QWEN_VL, server.port, str(image), "--expect", "BLUE")
        (request,) = server.requests()
    assert result.returncode == 0, result.stderr
    assert request["declared"] == f"image/{fmt.lower()}" == f"image/{request['format']}"
    assert request["colour"] == "blue" and "one short sentence" in request["prompt"]
    printed = result.json()
    assert printed["image"] == str(image) and printed["expected"] == "BLUE"
    assert printed["answer"] == "Blue" and printed["notes"] == "Blue"


def test_expect_fails_when_the_answer_does_not_name_the_word(demo_registry, tmp_path):
    image = tmp_path / "sky.jpg"
    image.write_bytes(image_bytes("JPEG", COLOURS["blue"]))
    with stand_in(tmp_path / "server") as server:
        result = probe_cli(demo_registry, QWEN_VL, server.port, str(image), "--expect", "red")
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"imageworks-loader probe-vision: asked about {image}, expecting 'red'; "
        "the model answered 'Blue'"
    )
    assert result.json()["failure"] == "wrong_answer"


def test_the_seeds_two_argument_form_counts_any_answer_and_says_so(demo_registry, tmp_path):
    image = tmp_path / "picture.png"
    image.write_bytes(image_bytes("PNG", COLOURS["yellow"]))
    with stand_in(tmp_path / "server") as server:
        point_at(demo_registry, QWEN_VL, server.port)  # as a user's registry would say
        result = run_cli("probe-vision", QWEN_VL, str(image), on(demo_registry))
    assert result.returncode == 0, result.stderr
    printed = result.json()
    assert printed["vision_ok"] is True and printed["expected"] is None
    assert printed["notes"] == "answer not checked (no --expect): Yellow"
    assert entry(demo_registry, DISCOVERED, QWEN_VL)["probes"]["vision"] == printed


# --- Ollama, sweeps, concurrency ----------------------------------------------------------


def test_an_ollama_entry_is_probed_through_its_v1_path(demo_registry, tmp_path):
    add_ollama_vision_entry(demo_registry)
    with stand_in(tmp_path / "server", models=[OLLAMA_VL_TAG]) as server:
        # no port in the entry: the endpoint uses the Ollama default port from config
        result = run_cli(
            "probe-vision", OLLAMA_VL, f"backends.ollama.port={server.port}", on(demo_registry)
        )
        requests = server.requests()
        served = httpx.get(f"{server.url}/models").json()  # what the stand-in serves
    assert [m["id"] for m in served["data"]] == [OLLAMA_VL_TAG]
    assert result.returncode == 0, result.stderr
    printed = result.json()
    assert printed["endpoint"] == f"http://127.0.0.1:{server.port}/v1"
    assert printed["served_model_id"] == OLLAMA_VL_TAG
    assert [(r["path"], r["model"]) for r in requests] == [
        ("/v1/chat/completions", OLLAMA_VL_TAG)
    ] * 2
    # a curated-only entry gets its probe in the discovered layer
    assert entry(demo_registry, DISCOVERED, OLLAMA_VL)["probes"]["vision"] == printed


def test_a_sweep_runs_every_job_and_exits_with_the_worst_code(demo_registry, tmp_path):
    names = [FLORENCE, QWEN3, QWEN_VL]  # blind, text-only, honest: the failures come first
    with (
        stand_in(tmp_path / "blind", mode="blind", models=[FLORENCE]) as blind,
        stand_in(tmp_path / "honest", models=[QWEN_VL]) as honest,
    ):
        sweep = "name=" + ",".join(f"'{n}'" for n in names)
        words = [*set_args(FLORENCE, blind.port), *set_args(QWEN_VL, honest.port)]
        result = run_cli("probe-vision", "-m", sweep, *words, on(demo_registry), cwd=tmp_path)
    assert result.returncode == 1
    documents = json_stream(result.stdout)
    assert [(d["model"], d["vision_ok"]) for d in documents] == [(FLORENCE, False), (QWEN_VL, True)]
    assert "imageworks-loader probe-vision: asked for the colour of a" in result.stderr
    assert "lacks required capability 'vision'" in result.stderr
    for document in documents:
        assert entry(demo_registry, DISCOVERED, document["model"])["probes"]["vision"] == document
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()


def test_two_probes_at_once_both_persist(demo_registry, tmp_path):
    with (
        stand_in(tmp_path / "a", models=[FLORENCE]) as first,
        stand_in(tmp_path / "b", models=[QWEN_VL]) as second,
    ):
        runs = [
            subprocess.Popen(
                [str(CLI), "probe-vision", name, *set_args(name, server.port), on(demo_registry)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, server in ((FLORENCE, first), (QWEN_VL, second))
        ]
        outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    for name in (FLORENCE, QWEN_VL):
        assert entry(demo_registry, DISCOVERED, name)["probes"]["vision"]["vision_ok"] is True


# --- the Python API -----------------------------------------------------------------------


def test_python_api_returns_the_result_and_records_it(demo_registry, tmp_path):
    with stand_in(tmp_path / "server") as server:
        point_at(demo_registry, QWEN_VL, server.port)
        registry = api_registry(demo_registry, "probe.rounds=3", "probe.max_tokens=5")
        result = run_vision_probe(QWEN_VL, registry=registry)
        requests = server.requests()
    assert isinstance(result, ProbeResult) and result.vision_ok
    assert len(result.rounds) == 3 == len(requests)
    assert {r["max_tokens"] for r in requests} == {5}
    assert entry(demo_registry, DISCOVERED, QWEN_VL)["probes"]["vision"] == result.to_json()
    assert registry.get(QWEN_VL).probes.vision == result.to_json()


def test_python_api_returns_a_failed_probe_and_raises_for_refused_ones(demo_registry, tmp_path):
    registry = api_registry(demo_registry)
    with stand_in(tmp_path / "server", mode="blind") as server:
        point_at(demo_registry, QWEN_VL, server.port)
        failed = run_vision_probe(QWEN_VL, registry=registry)
        assert failed.vision_ok is False and failed.failure == "wrong_answer"
        assert len(server.requests()) == 1  # the first wrong round ends the probe
        before = folder_digest(demo_registry)
        with pytest.raises(CapabilityError):
            run_vision_probe(QWEN3, registry=registry)
        with pytest.raises(ProbeInputError, match="not an image"):
            run_vision_probe(QWEN_VL, SERVER, expect="red", registry=registry)
        with pytest.raises(ProbeInputError, match="empty word"):
            run_vision_probe(QWEN_VL, expect=" ", registry=registry)
        assert len(server.requests()) == 1
    assert folder_digest(demo_registry) == before


def test_connection_errors_are_retried_until_the_server_is_up(demo_registry, tmp_path):
    port = free_port()
    point_at(demo_registry, QWEN_VL, port)
    log = tmp_path / "late.jsonl"
    started: list[subprocess.Popen] = []
    # The server starts 0.3 s after the first attempt, which therefore is refused;
    # the retries (0.5 s, 1 s, 2 s ... apart) reach it.
    timer = threading.Timer(0.3, lambda: started.append(launch(log, port=port)))
    registry = api_registry(demo_registry, "probe.retries=5", "probe.rounds=1")
    try:
        timer.start()
        begun = time.monotonic()
        result = run_vision_probe(QWEN_VL, registry=registry)
        elapsed = time.monotonic() - begun
    finally:
        timer.join()
        for process in started:
            stop(process)
    assert result.vision_ok, result.notes
    assert elapsed > 0.3
