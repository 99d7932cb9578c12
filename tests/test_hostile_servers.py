"""The hostile-server family (issue 18): import-ollama and probe-vision
against a server of our own that trickles, floods, bombs, nests, redirects
and injects ``${...}`` text.

Each case runs the real loader as a real process and asserts the time bound,
the one line on stderr, the exit code, the registry folder's bytes before and
after, the peak memory, and that no process of the case is left.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import CURATED, DEMO_REGISTRY, DISCOVERED, SNAPSHOT, copy_registry, folder_digest
from hostile_support import CAP_BYTES, DEADLINE_S, PEAK_RSS_MB, SLACK_S, Case, models_file
from importers_support import PHI4, QWEN3, empty_registry_folder, model
from probe_support import QWEN_VL, set_args

from loader.probe.vision import solid_png

HOSTILE_MODES = [
    "trickle-body",
    "trickle-headers",
    "endless",
    "huge",
    "huge-chunked",
    "gzip-bomb",
    "deep-json",
    "redirect",
    "status500",
]
IMPORT_LIMITS = [
    f"importers.ollama.timeout_s={DEADLINE_S}",
    f"importers.ollama.max_bytes={CAP_BYTES}",
]
PROBE_LIMITS = [f"probe.timeout_s={DEADLINE_S}", f"probe.max_bytes={CAP_BYTES}", "probe.retries=0"]


@pytest.fixture
def case():
    one = Case()
    yield one
    one.assert_nothing_left()


def import_ollama(case: Case, registry: Path, url: str, *extra: str):
    return case.loader(
        "import-ollama", "--url", url, f"registry.dir={registry}", *IMPORT_LIMITS, *extra
    )


def assert_bounded_failure(run, *fragments: str) -> str:
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.lines()
    assert len(lines) == 1, run.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert run.elapsed < DEADLINE_S + SLACK_S, f"took {run.elapsed:.1f} s"
    assert run.peak_rss_mb < PEAK_RSS_MB, f"peak RSS {run.peak_rss_mb:.0f} MB"
    return lines[0]


# --- import-ollama: /api/tags and /api/show -------------------------------------------


@pytest.mark.parametrize("mode", HOSTILE_MODES)
def test_a_hostile_listing_ends_in_time_in_one_line_and_writes_nothing(case, tmp_path, mode):
    registry = empty_registry_folder(tmp_path)
    before = folder_digest(registry)
    with case.server(mode, "--target", "/api/tags") as url:
        run = import_ollama(case, registry, url)
    assert_bounded_failure(run, url)
    assert run.stdout == ""
    assert folder_digest(registry) == before


@pytest.mark.parametrize("mode", HOSTILE_MODES)
def test_a_hostile_show_answer_refuses_that_model_in_one_line(case, tmp_path, mode):
    registry = empty_registry_folder(tmp_path)
    before = folder_digest(registry)
    served = models_file(tmp_path, [QWEN3])
    with case.server(mode, "--target", "/api/show", "--models", str(served)) as url:
        run = import_ollama(case, registry, url)
    assert_bounded_failure(run, "'qwen3:8b'", "/api/show")
    assert json.loads(run.stdout)["refused"][0]["model"] == "qwen3:8b"
    assert folder_digest(registry) == before


def test_local_addresses_never_go_through_http_proxy(case, tmp_path):
    # A proxy that does not exist: a request sent through it would fail.
    case.env["HTTP_PROXY"] = case.env["http_proxy"] = "http://127.0.0.1:9"
    case.env.pop("NO_PROXY", None)
    case.env.pop("no_proxy", None)
    registry = empty_registry_folder(tmp_path)
    served = models_file(tmp_path, [PHI4])
    with case.server("normal", "--models", str(served)) as url:
        run = import_ollama(case, registry, url)
    assert run.returncode == 0, run.stderr
    assert [a["name"] for a in json.loads(run.stdout)["added"]] == ["phi4_14b_(Q4_K_M)"]


# --- import-ollama: what a server says is data ----------------------------------------------

INJECTED = "${oc.env:HOME}"


def test_injected_text_from_ollama_is_stored_literally(case, tmp_path):
    registry = empty_registry_folder(tmp_path)
    evil = model(
        QWEN3,
        modified_at="${missing}",
        details={**QWEN3["details"], "family": INJECTED, "parameter_size": "${missing} 8B"},
        model_info={"general.architecture": "a\\${x}", "a\\${x}.context_length": 4096},
    )
    served = models_file(tmp_path, [evil])
    with case.server("normal", "--models", str(served)) as url:
        run = import_ollama(case, registry, url)
        assert run.returncode == 0, run.stderr
        again = import_ollama(case, registry, url)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["updated"] == []  # stored text reads back as itself

    home = os.environ.get("HOME", "/root")
    for layer in (SNAPSHOT,):
        text = (registry / layer).read_text(encoding="utf-8")
        entry = next(e for e in json.loads(text) if e["name"] == "qwen3_8b_(Q4_K_M)")
        assert entry["metadata"]["ollama_family"] == INJECTED
        assert entry["metadata"]["ollama_parameter_size"] == "${missing} 8B"
        assert entry["metadata"]["ollama_architecture"] == "a\\${x}"
        assert entry["downloaded_at"] == "${missing}"
        assert f'"{home}"' not in text
    # Every later command still loads the registry, and shows the text as it came.
    shown = case.loader("select", "qwen3_8b_(Q4_K_M)", f"registry.dir={registry}")
    assert shown.returncode == 0, shown.stderr
    listed = case.loader("list", f"registry.dir={registry}")
    assert listed.returncode == 0, listed.stderr
    explained = case.loader("explain", "qwen3_8b_(Q4_K_M)", f"registry.dir={registry}")
    rows = {r["field"]: r for r in json.loads(explained.stdout)["fields"]}
    assert rows["metadata.ollama_family"]["value"] == INJECTED


def test_a_tag_holding_an_interpolation_is_refused_at_the_door(case, tmp_path):
    registry = empty_registry_folder(tmp_path)
    served = models_file(tmp_path, [model(QWEN3, name="evil${missing}:8b"), PHI4])
    with case.server("normal", "--models", str(served)) as url:
        run = import_ollama(case, registry, url)
    assert run.returncode == 1
    (line,) = run.lines()
    assert "'evil${missing}:8b'" in line and "${" in line
    assert [a["name"] for a in json.loads(run.stdout)["added"]] == ["phi4_14b_(Q4_K_M)"]
    later = case.loader("list", f"registry.dir={registry}")
    assert later.returncode == 0, later.stderr


def test_a_tag_listed_twice_is_said_in_one_warning_line_and_the_later_wins(case, tmp_path):
    registry = empty_registry_folder(tmp_path)
    served = models_file(
        tmp_path, [model(PHI4, size=1), QWEN3, model(PHI4, size=2), model(PHI4, size=3)]
    )
    with case.server("normal", "--models", str(served)) as url:
        run = import_ollama(case, registry, url)
    assert run.returncode == 0, run.stderr
    (line,) = run.lines()
    assert line.startswith("imageworks-loader: warning: ")
    assert "'phi4:14b' ×3" in line and "later" in line
    snapshot = json.loads((registry / SNAPSHOT).read_text(encoding="utf-8"))
    sizes = {e["name"]: e["download_size_bytes"] for e in snapshot}
    assert sizes == {"phi4_14b_(Q4_K_M)": 3, "qwen3_8b_(Q4_K_M)": QWEN3["size"]}


# --- probe-vision --------------------------------------------------------------------------


@pytest.fixture
def demo(tmp_path) -> Path:
    return copy_registry(DEMO_REGISTRY, tmp_path / "demo", snapshot=False)


def probe(case: Case, registry: Path, url: str, *words: str):
    port = url.rsplit(":", 1)[1]
    return case.loader(
        "probe-vision",
        QWEN_VL,
        *words,
        *set_args(QWEN_VL, int(port)),
        f"registry.dir={registry}",
        *PROBE_LIMITS,
    )


def recorded_probe(registry: Path) -> dict:
    entries = json.loads((registry / DISCOVERED).read_text(encoding="utf-8"))
    return next(e for e in entries if e["name"] == QWEN_VL)["probes"]["vision"]


@pytest.mark.parametrize("mode", [m for m in HOSTILE_MODES if m != "status500"])
def test_a_hostile_model_server_ends_the_probe_in_time_in_one_line(case, demo, mode):
    curated = (demo / CURATED).read_bytes()
    with case.server(mode, "--target", "/v1/chat/completions") as url:
        run = probe(case, demo, url)
    assert_bounded_failure(run, "/v1/chat/completions")
    # A failed probe is recorded (a bounded record), and nothing else changes.
    assert (demo / CURATED).read_bytes() == curated
    recorded = recorded_probe(demo)
    assert recorded["vision_ok"] is False
    assert len(json.dumps(recorded)) < 8192


@pytest.mark.parametrize(
    "content",
    [
        "42",
        '{"text": "red"}',
        '[{"type": "text", "text": 5}]',
        '["red"]',
    ],
)
def test_a_content_that_is_not_text_is_malformed_not_a_traceback(case, demo, content):
    with case.server("normal", "--content", content) as url:
        run = probe(case, demo, url)
    assert_bounded_failure(run, "malformed reply", "content")
    assert recorded_probe(demo)["failure"] == "malformed"


def image(folder: Path) -> str:
    """An image file: probe-vision IMAGE without --expect passes any answer."""
    path = folder / "square.png"
    path.write_bytes(solid_png((220, 30, 30)))
    return str(path)


def test_an_injected_answer_is_recorded_literally(case, demo, tmp_path):
    answer = "red ${oc.env:HOME} ${missing} \\${x}"
    with case.server("normal", "--answer", answer) as url:
        run = probe(case, demo, url, image(tmp_path))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["answer"] == answer
    # Every later command loads, and shows the words as the model said them.
    for _ in range(2):  # composed from the layers, then from the snapshot
        metrics = case.loader("metrics", QWEN_VL, f"registry.dir={demo}")
        assert metrics.returncode == 0, metrics.stderr
        assert json.loads(metrics.stdout)["vision_probe"]["answer"] == answer
    snapshot = json.loads((demo / SNAPSHOT).read_text(encoding="utf-8"))
    stored = next(e for e in snapshot if e["name"] == QWEN_VL)["probes"]["vision"]
    assert stored["answer"] == answer and answer in stored["notes"]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "too-big"])
def test_an_image_that_is_not_a_bounded_regular_file_is_refused(case, demo, tmp_path, kind):
    path = tmp_path / "photo.png"
    if kind == "fifo":
        os.mkfifo(path)  # nobody writes: a plain open would wait for ever
    elif kind == "dev-zero":
        path = Path("/dev/zero")
    else:
        path.write_bytes(solid_png((1, 2, 3)) + bytes(2 * CAP_BYTES))
    before = folder_digest(demo)
    with case.server("normal") as url:
        run = probe(case, demo, url, str(path), "probe.max_image_bytes=1048576")
    expected = {
        "fifo": "not a regular file",
        "dev-zero": "not a regular file",
        "too-big": "larger than 1,048,576 bytes (probe.max_image_bytes)",
    }[kind]
    assert_bounded_failure(run, str(path), expected)
    assert run.stdout == ""
    assert folder_digest(demo) == before


def test_a_long_answer_is_recorded_as_an_excerpt_with_its_length_and_sha256(case, demo, tmp_path):
    with case.server("normal", "--answer", "red ", "--repeat", "200000") as url:
        run = probe(case, demo, url, image(tmp_path))
    assert run.returncode == 0, run.stderr
    whole = ("red " * 200000).strip()
    recorded = recorded_probe(demo)
    assert recorded["answer_chars"] == len(whole)
    assert recorded["answer_sha256"] == hashlib.sha256(whole.encode()).hexdigest()
    assert len(recorded["answer"]) <= 2048
    assert all(len(r["answer"]) <= 2048 for r in recorded["rounds"])
    assert (demo / DISCOVERED).stat().st_size < 64 * 1024
    assert case.loader("list", f"registry.dir={demo}").returncode == 0
