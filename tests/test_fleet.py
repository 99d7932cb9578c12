"""One registry shared by several GPU hosts (issue 19): portable paths and
ports written by the importers, one entry per model across hosts, and each
host's verify/probe/activation results kept side by side."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import DISCOVERED, read_json
from tests.importers_support import FORMATS, empty_registry_folder, model_folder
from tests.importers_support import run_loader as run

AWQ = FORMATS["awq"][2]
GGUF = FORMATS["gguf"][2]


class Host:
    """A "host": its own model root and HOSTNAME, the shared registry."""

    def __init__(self, name: str, root: Path, registry: Path, state: Path) -> None:
        self.name, self.root, self.registry = name, root, registry
        self.env = {
            **os.environ,
            "HOSTNAME": name,
            "IMAGEWORKS_MODEL_ROOT": str(root),
            "IMAGEWORKS_REFRESH_REPORT": str(state / "report.json"),
            "IMAGEWORKS_REFRESH_SUMMARY": str(state / "summary.md"),
        }
        self.env.pop("IMAGEWORKS_HOST", None)
        self.state = state

    def run(self, *words: str):
        # Each host keeps its own doit state (as a host with its own checkout does).
        return run(self.registry, *words, f"pipeline.state_dir={self.state}", env=self.env)


@pytest.fixture
def hosts(tmp_path) -> tuple[Host, Host]:
    registry = empty_registry_folder(tmp_path)
    a = Host("gpu-a", tmp_path / "a" / "weights", registry, tmp_path / "a" / "state")
    b = Host("gpu-b", tmp_path / "b" / "models", registry, tmp_path / "b" / "state")
    model_folder(a.root, "awq")
    model_folder(b.root, "awq")  # the same model, under B's own root
    model_folder(a.root, "gguf")  # only on host A
    return a, b


def discovered(registry: Path) -> dict[str, dict]:
    return {e["name"]: e for e in read_json(registry / DISCOVERED)}


def test_two_hosts_share_one_registry_without_conflict(hosts):
    a, b = hosts
    for host, words in [
        (a, ("rediscover",)),
        (b, ("rediscover",)),
        (a, ("verify", "--all")),
        (b, ("verify", AWQ)),
        (a, ("refresh",)),
        (b, ("refresh",)),
        (a, ("rediscover",)),
    ]:
        result = host.run(*words)
        assert result.returncode == 0, (host.name, words, result.stderr)

    entries = discovered(a.registry)
    assert sorted(entries) == sorted([AWQ, GGUF])  # one entry per model
    awq = entries[AWQ]
    # Stored portably: each host resolves them under its own root and port.
    relative = "Qwen/Qwen2.5-VL-7B-Instruct-AWQ"
    assert awq["backend_config"]["model_path"] == "${paths.models}/" + relative
    assert awq["download_path"] == "${paths.models}/" + relative
    assert awq["chat_template"]["path"] == "${paths.models}/" + relative + "/chat_template.json"
    assert awq["backend_config"]["port"] == "${backends.vllm.port}"
    # Both hosts' verdicts are kept.
    assert awq["hosts"]["gpu-a"]["verify"]["status"] == "unlocked"
    assert awq["hosts"]["gpu-b"]["verify"]["status"] == "unlocked"
    assert set(entries[GGUF]["hosts"]) == {"gpu-a"}

    # Each host resolves the one entry to its own folder.
    for host in (a, b):
        explained = json.loads(host.run("explain", AWQ, "--field", "download_path").stdout)
        assert explained["value"] == str(host.root / relative)


def test_the_backend_port_override_moves_imported_entries(hosts):
    a, _ = hosts
    assert a.run("rediscover").returncode == 0
    moved = a.run("select", AWQ, "backends.vllm.port=25001")
    assert moved.returncode == 0, moved.stderr
    assert ":25001/" in json.loads(moved.stdout)["endpoint"]


def test_an_entry_recorded_with_another_hosts_absolute_path_is_the_same_model(hosts, tmp_path):
    a, b = hosts
    assert a.run("rediscover").returncode == 0
    # As an older importer left it: host A's absolute paths, literally.
    gone = "/nonexistent-host-a/weights/Qwen/Qwen2.5-VL-7B-Instruct-AWQ"
    layer = read_json(a.registry / DISCOVERED)
    for entry in layer:
        if entry["name"] == AWQ:
            entry["backend_config"]["model_path"] = entry["download_path"] = gone
    (a.registry / DISCOVERED).write_text(json.dumps(layer, indent=2) + "\n")

    result = b.run("rediscover")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == []
    [updated] = [u for u in report["updated"] if u["name"] == AWQ]
    after = {c["field"]: c["after"] for c in updated["changes"]}
    portable = "${paths.models}/Qwen/Qwen2.5-VL-7B-Instruct-AWQ"
    assert after["backend_config.model_path"] == after["download_path"] == portable
    assert discovered(a.registry)[AWQ]["download_path"] == portable


def test_host_name_comes_from_imageworks_host_first(hosts):
    a, _ = hosts
    assert a.run("rediscover").returncode == 0
    a.env["IMAGEWORKS_HOST"] = "render-01"
    assert a.run("verify", AWQ).returncode == 0
    assert set(discovered(a.registry)[AWQ]["hosts"]) == {"render-01"}


def test_a_reimport_makes_a_literal_default_port_follow_the_config(hosts):
    a, _ = hosts
    assert a.run("rediscover").returncode == 0
    layer = read_json(a.registry / DISCOVERED)
    for entry in layer:  # as an older importer (or ImageWorks) stored it
        entry["backend_config"]["port"] = 24001
    (a.registry / DISCOVERED).write_text(json.dumps(layer, indent=2) + "\n")
    result = a.run("rediscover")
    assert result.returncode == 0, result.stderr
    changes = [c for u in json.loads(result.stdout)["updated"] for c in u["changes"]]
    assert {"field": "backend_config.port", "before": 24001, "after": "${backends.vllm.port}"} in (
        changes
    )
    assert {e["backend_config"]["port"] for e in read_json(a.registry / DISCOVERED)} == {
        "${backends.vllm.port}"
    }
    # A port someone chose is theirs: a curated port is left alone.
    curated = [{"name": AWQ, "backend_config": {"port": 24001}}]
    (a.registry / "model_registry.curated.json").write_text(json.dumps(curated))
    layer = read_json(a.registry / DISCOVERED)
    for entry in layer:
        entry["backend_config"]["port"] = 24001
    (a.registry / DISCOVERED).write_text(json.dumps(layer, indent=2) + "\n")
    again = json.loads(a.run("rediscover").stdout)
    touched = {u["name"] for u in again["updated"] if any(
        c["field"] == "backend_config.port" for c in u["changes"])}  # fmt: skip
    assert touched == {GGUF}
