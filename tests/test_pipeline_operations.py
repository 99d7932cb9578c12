"""The tasks that call other issues' operations, against their stand-in servers:
import:ollama and rediscover (issue 7), activate (issue 8), probe (issue 6)."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest
from conftest import DISCOVERED, ROOT, read_json
from importers_support import ollama_models_folder
from orchestrator_support import FLORENCE, QWEN, orchestra_world
from pipeline_support import DODO, PYTHON, importer_site, ran  # noqa: F401 (a fixture)
from probe_support import OLLAMA_VL, OLLAMA_VL_TAG, add_ollama_vision_entry, stand_in


@pytest.fixture
def site(importer_site):  # noqa: F811 (the fixture imported above)
    return importer_site


def names(site) -> set[str]:
    return {e["name"] for e in site.discovered()}


def test_imports_run_only_when_named(site):
    plain = site.doit()
    assert plain.returncode == 0, plain.stderr
    assert not any(t.startswith(("import", "rediscover")) for t in ran(plain.stdout))
    assert names(site) == {"alpha", "beta_(Q4_K_M)"}

    named = site.doit("import:ollama")
    assert named.returncode == 0, named.stderr
    assert ran(named.stdout) == ["import:ollama"]
    imported = names(site) - {"alpha", "beta_(Q4_K_M)"}
    assert len(imported) == 1 and "qwen3" in imported.pop()


def test_the_profile_enables_them_and_the_snapshot_follows(site):
    enabled = site.doit(overrides=("profile.import_ollama=true", "profile.rediscover=true"))
    assert enabled.returncode == 0, enabled.stderr
    order = [line[3:] for line in enabled.stdout.splitlines() if line.startswith(".  ")]
    assert {"import:ollama", "rediscover"} <= set(order)
    assert order[-1] == "snapshot"  # after every task that writes the discovered layer
    assert any("qwen3" in n for n in names(site))


def test_an_unreachable_ollama_fails_its_task_only(site):
    site.ollama.stop()
    result = site.doit(overrides=("profile.import_ollama=true",))
    assert result.returncode != 0
    failed = [line for line in result.stderr.splitlines() if line.startswith("doit: import:ollama")]
    assert len(failed) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "verify:alpha" in ran(result.stdout)  # the model chains still ran


# --- activate (issue 8): the stand-in vLLM started through the orchestrator ---


@pytest.fixture
def orchestra(tmp_path, monkeypatch):
    yield from orchestra_world(tmp_path, monkeypatch)


def doit_in(orchestra, *words: str):
    """doit over the orchestra's registry, with its overrides (port, stand-in command)."""
    return subprocess.run(
        [PYTHON, "-m", "doit", "-f", str(DODO), *words, *orchestra.overrides],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ),  # the orchestra's registry, models, state file, test marker
        timeout=180,
    )


def test_activate_serves_the_desired_model_and_restarts_nothing_when_healthy(orchestra):
    # the entries' endpoint is the orchestrator's port, so probe:NAME reaches the server
    desired = (f"orchestrator.desired='{FLORENCE}'", f"backends.vllm.port={orchestra.port}")
    listed = doit_in(orchestra, "list")
    assert listed.returncode == 0 and "activate" not in listed.stdout  # no desired model

    first = doit_in(orchestra, *desired)
    assert "activate" in ran(first.stdout), first.stderr
    state = orchestra.state()
    assert state["logical_name"] == FLORENCE and state["port"] == orchestra.port
    models = httpx.get(f"http://127.0.0.1:{orchestra.port}/v1/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == [FLORENCE]
    # then the served vision model is probed; the vLLM stand-in does not look at images
    failures = [line for line in first.stderr.splitlines() if line.startswith("doit: ")]
    assert failures[0].startswith(f"doit: probe:{FLORENCE}: ") and "stand-in reply" in failures[0]
    assert not any(line.startswith("doit: activate") for line in failures)

    again = doit_in(orchestra, *desired)
    assert orchestra.state()["pid"] == state["pid"]  # healthy: nothing restarted
    assert "already active" in again.stderr

    switched = doit_in(orchestra, f"orchestrator.desired='{QWEN}'")
    assert "activate" in ran(switched.stdout), switched.stderr
    assert orchestra.state()["logical_name"] == QWEN
    stopped = orchestra.cli("activate-model", "--stop")
    assert stopped.returncode == 0, stopped.stderr


def test_a_desired_model_that_cannot_be_served_fails_only_activate(orchestra):
    result = doit_in(orchestra, "orchestrator.desired='llama3.1_8b_(Q5_K_M)'")  # ollama-backed
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("doit: activate")]
    assert len(lines) == 1 and "vLLM" in lines[0], result.stderr
    assert orchestra.state() is None


# --- probe (issue 6): the OpenAI-compatible vision stand-in -------------------


@pytest.fixture
def vision_site(demo_registry, tmp_path):
    """The demo registry plus an Ollama vision model whose blobs are on this host."""
    add_ollama_vision_entry(demo_registry)
    ollama_models_folder(tmp_path / "ollama-models", OLLAMA_VL_TAG, [b"cfg", b"vision weights"])
    env = dict(os.environ, OLLAMA_MODELS=str(tmp_path / "ollama-models"))
    return demo_registry, env


def doit_on(registry, env, *words):
    return subprocess.run(
        [PYTHON, "-m", "doit", "-f", str(DODO), *words, f"registry.dir={registry}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
    )


def vision_record(registry):
    entry = next(e for e in read_json(registry / DISCOVERED) if e["name"] == OLLAMA_VL)
    return entry["probes"]["vision"]


def test_probe_runs_after_verify_and_again_only_when_its_record_is_stale(vision_site, tmp_path):
    registry, env = vision_site
    task = f"probe:{OLLAMA_VL}"
    with stand_in(tmp_path / "server", models=[OLLAMA_VL_TAG]) as server:
        port = f"backends.ollama.port={server.port}"
        first = doit_on(registry, env, port)
        assert first.returncode == 0, first.stderr
        order = [line[3:] for line in first.stdout.splitlines() if line.startswith(".  ")]
        assert order.index(f"verify:{OLLAMA_VL}") < order.index(task) < order.index("snapshot")
        record = vision_record(registry)
        assert record["vision_ok"] and record["endpoint"].endswith(f":{server.port}/v1")

        assert ran(doit_on(registry, env, port).stdout) == []  # the record still applies
        assert ran(doit_on(registry, env, port, "probe.rounds=3").stdout) == [task, "snapshot"]
        aged = doit_on(registry, env, port, "probe.rounds=3", "probe.max_age=0")
        assert ran(aged.stdout) == [task, "snapshot"]
        requests = len(server.requests())

    # new weights: the hash changes, so verify and probe run again
    ollama_models_folder(tmp_path / "ollama-models", OLLAMA_VL_TAG, [b"cfg", b"new weights"])
    with stand_in(tmp_path / "server", models=[OLLAMA_VL_TAG]) as server:
        again = doit_on(registry, env, f"backends.ollama.port={server.port}", "probe.rounds=3")
        assert again.returncode == 0, again.stderr
        assert {f"hash:{OLLAMA_VL}", f"verify:{OLLAMA_VL}", task} <= set(ran(again.stdout))
        assert vision_record(registry)["aggregate_sha256"] != record["aggregate_sha256"]
    assert requests == 2 + 3 + 3  # rounds per probe run: 2, then 3, then 3


def test_a_blind_model_fails_its_probe_and_only_that(vision_site, tmp_path):
    registry, env = vision_site
    with stand_in(tmp_path / "server", models=[OLLAMA_VL_TAG], mode="blind") as server:
        result = doit_on(registry, env, f"backends.ollama.port={server.port}")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("doit: probe:")]
    assert len(lines) == 1 and "the model answered" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert vision_record(registry)["vision_ok"] is False  # recorded, as on the CLI
    assert f"verify:{OLLAMA_VL}" in ran(result.stdout)
