"""import-ollama against a real stand-in server process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from loader.importers.ollama import ollama_base_url, ollama_entry_name
from loader.integrity.hashing import aggregate_sha256
from loader.registry.schema import canonical_only, normalize_capabilities
from tests.conftest import (
    CURATED,
    DISCOVERED,
    REAL_REGISTRY,
    SNAPSHOT,
    folder_digest,
    read_json,
    run_cli,
)
from tests.importers_support import (
    EMBED,
    PHI4,
    QWEN3,
    QWEN_VL,
    OllamaStandIn,
    empty_registry_folder,
    model,
    ollama_models_folder,
    run_loader,
)


def cli_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("IMAGEWORKS_OLLAMA_HOST", "OLLAMA_HOST")
    }
    env["OLLAMA_MODELS"] = "/nonexistent-ollama-models"
    env.update(extra)
    return env


def run(registry: Path, *words: str, **env: str):
    return run_loader(registry, *words, env=cli_env(**env))


@pytest.fixture
def ollama(tmp_path):
    server = OllamaStandIn(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def malformed_ollama(tmp_path):
    server = OllamaStandIn(tmp_path, mode="malformed")
    yield server
    server.stop()


@pytest.fixture
def empty_registry(tmp_path) -> Path:
    return empty_registry_folder(tmp_path)


def entries_of(registry: Path) -> dict[str, dict]:
    return {e["name"]: e for e in read_json(registry / SNAPSHOT)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- naming and URLs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "quant", "name"),
    [
        ("qwen3:8b", "Q4_K_M", "qwen3_8b_(Q4_K_M)"),
        ("qwen2.5vl:7b", "Q4_K_M", "qwen2.5vl_7b_(Q4_K_M)"),
        ("llama3.1-local:latest", "Q5_K_M", "llama3.1-local-latest_(Q5_K_M)"),
        ("huihui_ai/gpt-oss-abliterated:20b", "F16", "gpt-oss-abliterated_20b_(F16)"),
        # Issue 17.4: as ImageWorks names fresh imports (imageworks-facts.md).
        ("llama3.1:8b-instruct-q5_K_M", "Q5_K_M", "llama3.1-8b-instruct_(Q5_K_M)"),
        (
            "huihui-gpt-oss-20b-mxfp4-abliterated-v2:latest",
            "MXFP4",
            "huihui-gpt-oss-20b-abliterated-v2-latest_(MXFP4)",
        ),
        ("nomic-embed-text:latest", "F16", "nomic-embed-text-latest_(F16)"),
    ],
)
def test_a_new_models_name_is_made_from_its_tag_as_in_the_real_registry(tag, quant, name):
    assert ollama_entry_name(tag, quant) == name


@pytest.mark.parametrize(
    ("given", "url"),
    [
        (None, "http://127.0.0.1:11434"),
        ("", "http://127.0.0.1:11434"),
        ("10.1.2.3:11500", "http://10.1.2.3:11500"),
        ("ollama-box", "http://ollama-box:11434"),
        ("http://ollama-box:9000/", "http://ollama-box:9000"),
        ("https://ollama.example", "https://ollama.example:443"),
    ],
)
def test_the_url_accepts_what_ollama_host_accepts(given, url):
    assert ollama_base_url(given) == url


# --- recording --------------------------------------------------------------------


def test_import_records_entries_shaped_like_the_real_registry(ollama, empty_registry):
    ollama.serve([QWEN3, QWEN_VL, EMBED])
    curated = (empty_registry / CURATED).read_bytes()
    result = run(empty_registry, "import-ollama", "--url", ollama.url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert sorted(a["name"] for a in report["added"]) == [
        "nomic-embed-text-latest_(F16)",
        "qwen2.5vl_7b_(Q4_K_M)",
        "qwen3_8b_(Q4_K_M)",
    ]
    assert report["written"] is True and report["updated"] == [] and report["missing"] == []
    assert (empty_registry / CURATED).read_bytes() == curated

    entry = entries_of(empty_registry)["qwen3_8b_(Q4_K_M)"]
    assert entry["display_name"] == "qwen3 8b (Q4 K M)"
    assert entry["backend"] == "ollama"
    assert entry["served_model_id"] == "qwen3:8b"
    assert entry["backend_config"]["model_path"] == "ollama:/qwen3:8b"
    assert entry["backend_config"]["port"] == 11434
    assert entry["backend_config"]["host"] == "host.docker.internal"
    assert entry["family"] == "qwen3-8b"
    assert entry["quantization"] == "q4_k_m"
    assert entry["source_provider"] == "ollama"
    assert entry["download_format"] == "gguf"
    assert entry["download_size_bytes"] == QWEN3["size"]
    assert entry["metadata"]["ollama_digest"] == QWEN3["digest"]
    assert entry["metadata"]["ollama_context_length"] == 40960
    assert entry["metadata"]["ollama_family"] == "qwen3"
    assert entry["chat_template"]["source"] == "embedded"

    # The capability map has exactly the real registry's stored keys.
    real = {e["name"]: e for e in read_json(REAL_REGISTRY / DISCOVERED)}
    assert list(entry["capabilities"]) == list(real["qwen3_8b_(Q4_K_M)"]["capabilities"])
    assert canonical_only(normalize_capabilities(entry["capabilities"])) == {
        "text": True,
        "vision": False,
        "audio": False,
        "embedding": False,
        "tools": True,
        "thinking": True,
        "reasoning": True,
    }
    vl = entries_of(empty_registry)["qwen2.5vl_7b_(Q4_K_M)"]["capabilities"]
    assert vl["vision"] and vl["vl"] and not vl["tools"]
    embed = entries_of(empty_registry)["nomic-embed-text-latest_(F16)"]["capabilities"]
    assert embed["embedding"] and not embed["text"]

    # And the registry serves them.
    listed = run(empty_registry, "select", "qwen2.5vl_7b_(Q4_K_M)", "--require-vision")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["internal_model_id"] == "qwen2.5vl:7b"


def test_the_host_rule_takes_imageworks_ollama_host(ollama, empty_registry):
    ollama.serve([QWEN3])
    result = run(
        empty_registry, "import-ollama", "--url", ollama.url, IMAGEWORKS_OLLAMA_HOST="gpu-box.lan"
    )
    assert result.returncode == 0, result.stderr
    entry = entries_of(empty_registry)["qwen3_8b_(Q4_K_M)"]
    assert entry["backend_config"]["host"] == "gpu-box.lan"


def test_an_entry_that_has_a_host_keeps_it(ollama, real_registry):
    ollama.serve([QWEN3])
    result = run(
        real_registry, "import-ollama", "--url", ollama.url, IMAGEWORKS_OLLAMA_HOST="gpu-box.lan"
    )
    assert result.returncode == 0, result.stderr
    for name in ("qwen3_8b_(Q4_K_M)", "qwen3_8.2b_(Q4_K_M)"):
        assert entries_of(real_registry)[name]["backend_config"]["host"] == "imageworks-ollama"


def test_the_url_comes_from_ollama_host_as_a_bare_host_and_port(ollama, empty_registry):
    ollama.serve([PHI4])
    result = run(empty_registry, "import-ollama", OLLAMA_HOST=f"127.0.0.1:{ollama.port}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["url"] == ollama.url
    assert "phi4_14b_(Q4_K_M)" in entries_of(empty_registry)


# --- re-import -----------------------------------------------------------------------


def test_a_second_run_with_nothing_changed_leaves_every_file_byte_identical(ollama, real_registry):
    ollama.serve([QWEN3, QWEN_VL, PHI4])
    first = run(real_registry, "import-ollama", "--url", ollama.url)
    assert first.returncode == 0, first.stderr
    before = folder_digest(real_registry)
    second = run(real_registry, "import-ollama", "--url", ollama.url)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["added"] == [] and report["updated"] == [] and report["written"] is False
    assert all(m["changes"] == [] for m in report["missing"])
    assert folder_digest(real_registry) == before


def test_the_real_registrys_two_names_for_one_tag_are_both_updated_and_no_third_added(
    ollama, real_registry
):
    curated = (real_registry / CURATED).read_bytes()
    ollama.serve([model(QWEN3, digest="f" * 64, size=5225390000)])
    result = run(real_registry, "import-ollama", "--url", ollama.url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == []
    assert sorted(u["name"] for u in report["updated"]) == [
        "qwen3_8.2b_(Q4_K_M)",
        "qwen3_8b_(Q4_K_M)",
    ]
    entries = entries_of(real_registry)
    same_tag = [n for n, e in entries.items() if e.get("served_model_id") == "qwen3:8b"]
    assert sorted(same_tag) == ["qwen3_8.2b_(Q4_K_M)", "qwen3_8b_(Q4_K_M)"]
    for name in same_tag:
        assert entries[name]["metadata"]["ollama_digest"] == "f" * 64
        assert entries[name]["download_size_bytes"] == 5225390000
        # static fields already set stay as they were
        assert entries[name]["display_name"] == name.replace("_", " ")
        assert entries[name]["family"] == "qwen3-8b"
    assert (real_registry / CURATED).read_bytes() == curated
    # The curated copies hold null there ("no opinion"): nothing is masked.
    assert entries["qwen3_8b_(Q4_K_M)"]["metadata"]["ollama_context_length"] == 40960
    assert "masked" not in result.stderr


def test_curated_precedence_still_applies_after_an_import(ollama, real_registry):
    # Ollama now says qwen3:8b sees images; the curated entry says it does not.
    ollama.serve([model(QWEN3, capabilities=["completion", "vision"], size=1234)])
    result = run(real_registry, "import-ollama", "--url", ollama.url)
    assert result.returncode == 0, result.stderr
    entry = entries_of(real_registry)["qwen3_8b_(Q4_K_M)"]
    assert entry["capabilities"]["vision"] is False  # static: the curated value stands
    assert entry["download_size_bytes"] == 1234  # dynamic: the fresh value wins
    explained = run(real_registry, "explain", "qwen3_8b_(Q4_K_M)")
    rows = {r["field"]: r for r in json.loads(explained.stdout)["fields"]}
    assert rows["download_size_bytes"]["source"] == "discovered"
    assert rows["capabilities.vision"]["source"] == "curated"


def test_a_model_gone_from_ollama_is_reported_and_marked_not_deleted(ollama, empty_registry):
    ollama.serve([QWEN3, PHI4])
    assert run(empty_registry, "import-ollama", "--url", ollama.url).returncode == 0
    ollama.serve([QWEN3])
    result = run(empty_registry, "import-ollama", "--url", ollama.url)
    assert result.returncode == 0, result.stderr
    missing = json.loads(result.stdout)["missing"]
    assert [m["name"] for m in missing] == ["phi4_14b_(Q4_K_M)"]
    assert missing[0]["changes"][0]["field"] == "metadata.ollama_missing_since"
    entry = entries_of(empty_registry)["phi4_14b_(Q4_K_M)"]
    assert entry["metadata"]["ollama_missing_since"]

    before = folder_digest(empty_registry)  # still gone: reported, nothing rewritten
    again = run(empty_registry, "import-ollama", "--url", ollama.url)
    assert [m["name"] for m in json.loads(again.stdout)["missing"]] == ["phi4_14b_(Q4_K_M)"]
    assert folder_digest(empty_registry) == before

    ollama.serve([QWEN3, PHI4])  # back: the mark is cleared
    back = run(empty_registry, "import-ollama", "--url", ollama.url)
    assert json.loads(back.stdout)["missing"] == []
    assert (
        entries_of(empty_registry)["phi4_14b_(Q4_K_M)"]["metadata"].get("ollama_missing_since")
        is None
    )


def test_a_name_taken_by_a_different_model_is_refused_naming_both(ollama, empty_registry):
    (empty_registry / CURATED).write_text(
        json.dumps(
            [
                {
                    "name": "phi4_14b_(Q4_K_M)",
                    "backend": "vllm",
                    "backend_config": {"model_path": "/models/microsoft/phi-4"},
                }
            ]
        ),
        encoding="utf-8",
    )
    before = folder_digest(empty_registry)
    ollama.serve([PHI4])
    result = run(empty_registry, "import-ollama", "--url", ollama.url)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "'phi4:14b'" in lines[0] and "/models/microsoft/phi-4" in lines[0]
    assert "phi4_14b_(Q4_K_M)" in lines[0]
    assert folder_digest(empty_registry) == before


# --- dry run and errors ------------------------------------------------------------------


def test_dry_run_prints_the_changes_field_by_field_and_writes_nothing(ollama, real_registry):
    before = folder_digest(real_registry)
    ollama.serve([model(QWEN3, size=42), PHI4])
    result = run(real_registry, "import-ollama", "--url", ollama.url, "--dry-run")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] is True and report["written"] is False
    assert [a["name"] for a in report["added"]] == ["phi4_14b_(Q4_K_M)"]
    added_fields = {c["field"]: c["after"] for c in report["added"][0]["changes"]}
    assert added_fields["served_model_id"] == "phi4:14b"
    assert added_fields["backend_config.model_path"] == "ollama:/phi4:14b"
    updated = {u["name"]: u["changes"] for u in report["updated"]}
    size_change = next(
        c for c in updated["qwen3_8b_(Q4_K_M)"] if c["field"] == "download_size_bytes"
    )
    assert size_change == {"field": "download_size_bytes", "before": None, "after": 42}
    assert "qwen2.5vl_7b_(Q4_K_M)" in {m["name"] for m in report["missing"]}
    assert folder_digest(real_registry) == before


def test_an_unreachable_server_exits_1_naming_the_url_and_the_variable(real_registry):
    before = folder_digest(real_registry)
    url = f"http://127.0.0.1:{free_port()}"
    result = run(real_registry, "import-ollama", "--url", url)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert url in lines[0] and "OLLAMA_HOST" in lines[0]
    assert folder_digest(real_registry) == before


def test_a_malformed_payload_exits_1_naming_the_model(malformed_ollama, real_registry):
    before = entries_of(real_registry)
    malformed_ollama.serve([QWEN3])
    result = run(real_registry, "import-ollama", "--url", malformed_ollama.url)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'qwen3:8b'" in lines[0] and "malformed" in lines[0]
    # A listed model whose data is bad is not "missing": its entries stay as they were.
    after = entries_of(real_registry)
    for name in ("qwen3_8b_(Q4_K_M)", "qwen3_8.2b_(Q4_K_M)"):
        assert after[name] == before[name]


# --- bad data from Ollama, checked at the door (issue 18.4) -----------------------------------

BAD_MODELS = {
    "a NUL in the name": model(PHI4, name="bad\x00:1"),
    "a newline in the name": model(PHI4, name="bad\nname:1"),
    "a lone surrogate in the name": model(PHI4, name="bad\ud800:1"),
    "a context length of 10^30": model(
        PHI4,
        name="ctx-huge:1",
        model_info={"general.architecture": "phi3", "phi3.context_length": 10**30},
    ),
    "a context length of -5": model(
        PHI4,
        name="ctx-negative:1",
        model_info={"general.architecture": "phi3", "phi3.context_length": -5},
    ),
    "a digest climbing out": model(PHI4, name="digest-path:1", digest="sha256:../../etc/passwd"),
    "a digest that is not hex": model(PHI4, name="digest-text:1", digest="z" * 64),
    "a malformed /api/show": model(PHI4, name="show-bad:1", capabilities="completion,vision"),
}


def test_a_listing_with_bad_models_records_the_good_ones_and_names_each_bad_one(
    ollama, empty_registry
):
    ollama.serve([QWEN3, *BAD_MODELS.values(), QWEN_VL])
    result = run(empty_registry, "import-ollama", "--url", ollama.url)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(BAD_MODELS), result.stderr
    for line in lines:
        assert line.startswith("imageworks-loader import-ollama: Ollama model ")
    for bad in BAD_MODELS.values():
        assert sum(repr(bad["name"]) in line for line in lines) == 1, (bad["name"], lines)
    report = json.loads(result.stdout)
    assert sorted(a["name"] for a in report["added"]) == [
        "qwen2.5vl_7b_(Q4_K_M)",
        "qwen3_8b_(Q4_K_M)",
    ]
    assert sorted(r["model"] for r in report["refused"]) == sorted(
        b["name"] for b in BAD_MODELS.values()
    )
    stored = entries_of(empty_registry)
    assert sorted(stored) == ["qwen2.5vl_7b_(Q4_K_M)", "qwen3_8b_(Q4_K_M)"]
    assert run(empty_registry, "list").returncode == 0


# --- names (issue 17.4) ------------------------------------------------------------------------


def test_a_name_already_recorded_stays_when_the_naming_rule_changed(ollama, empty_registry):
    tag = "llama3.1:8b-instruct-q5_K_M"
    old_name = "llama3.1_8b-instruct_(Q5_K_M)"  # how earlier versions named this tag
    (empty_registry / DISCOVERED).write_text(
        json.dumps(
            [
                {
                    "name": old_name,
                    "backend": "ollama",
                    "served_model_id": tag,
                    "backend_config": {"model_path": f"ollama:/{tag}"},
                }
            ]
        ),
        encoding="utf-8",
    )
    llama = model(PHI4, name=tag, details={**PHI4["details"], "quantization_level": "Q5_K_M"})
    ollama.serve([llama])
    result = run(empty_registry, "import-ollama", "--url", ollama.url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == [] and [u["name"] for u in report["updated"]] == [old_name]
    assert sorted(entries_of(empty_registry)) == [old_name]

    fresh = empty_registry_folder(empty_registry.parent / "fresh")
    result = run(fresh, "import-ollama", "--url", ollama.url)
    assert result.returncode == 0, result.stderr
    assert sorted(entries_of(fresh)) == ["llama3.1-8b-instruct_(Q5_K_M)"]


# --- artifacts from the Ollama models folder -----------------------------------------------


def test_artifacts_come_from_the_tags_manifest_through_the_hashing_engine(
    ollama, empty_registry, tmp_path
):
    models = tmp_path / "ollama-models"
    blobs = ollama_models_folder(models, "qwen3:8b", [b'{"model_format":"gguf"}', b"GGUF weights"])
    ollama.serve([QWEN3])
    result = run(empty_registry, "import-ollama", "--url", ollama.url, OLLAMA_MODELS=str(models))
    assert result.returncode == 0, result.stderr
    artifacts = entries_of(empty_registry)["qwen3_8b_(Q4_K_M)"]["artifacts"]
    expected = [{"path": p, "sha256": d} for p, d in sorted(blobs.items())]
    assert artifacts["files"] == expected
    assert artifacts["aggregate_sha256"] == aggregate_sha256(expected)
    # verify computes the same aggregate, from the same stat cache: nothing re-read
    verified = run(empty_registry, "verify", "qwen3_8b_(Q4_K_M)", OLLAMA_MODELS=str(models))
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["aggregate_sha256"] == artifacts["aggregate_sha256"]
    assert report["files_read"] == 0 and report["cache_hits"] == 2


# --- the other front door ------------------------------------------------------------------


def test_the_hydra_app_runs_the_same_import(ollama, empty_registry):
    ollama.serve([PHI4])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loader.apps",
            "import-ollama",
            f"url='{ollama.url}'",
            "dry_run=true",
            f"registry.dir={empty_registry}",
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert [a["name"] for a in report["added"]] == ["phi4_14b_(Q4_K_M)"]
    assert not (empty_registry / DISCOVERED).exists()


def test_the_cli_runs_the_installed_console_script(ollama, empty_registry):
    ollama.serve([PHI4])
    result = run_cli(
        "import-ollama",
        "--url",
        ollama.url,
        f"registry.dir={empty_registry}",
        env={"OLLAMA_MODELS": "/nonexistent"},
    )
    assert result.returncode == 0, result.stderr
    assert (empty_registry / DISCOVERED).exists()


def test_a_new_entry_takes_its_port_from_config(ollama, empty_registry):
    """Issue 19: `${backends.ollama.port}`, so backends.ollama.port=… moves it."""
    ollama.serve([QWEN3])
    result = run(empty_registry, "import-ollama", "--url", ollama.url)
    assert result.returncode == 0, result.stderr
    [stored] = read_json(empty_registry / DISCOVERED)
    assert stored["backend_config"]["port"] == "${backends.ollama.port}"
    moved = run(empty_registry, "select", stored["name"], "backends.ollama.port=11500")
    assert ":11500/" in json.loads(moved.stdout)["endpoint"], moved.stderr


def test_an_import_that_lets_go_of_its_entries_reads_them_back_when_asked(
    ollama, empty_registry, monkeypatch
):
    """The front doors import with keep_entries=False (issue 14's memory
    target): the entries are read back on the next ensure_loaded, and a save
    made in that state writes what changed, never an empty registry."""
    from loader.config import load_config
    from loader.importers.ollama import import_ollama
    from loader.registry.core import Registry

    monkeypatch.setenv("OLLAMA_MODELS", "/nonexistent-ollama-models")
    ollama.serve([QWEN3, QWEN_VL])
    registry = Registry(load_config([f"registry.dir={empty_registry}"]))
    report = import_ollama(registry, url=ollama.url, keep_entries=False)
    assert report["written"] is True and len(report["added"]) == 2
    assert registry.entries == {}  # let go after the save
    snapshot = (empty_registry / SNAPSHOT).read_bytes()
    assert sorted(e["name"] for e in json.loads(snapshot)) == sorted(
        a["name"] for a in report["added"]
    )

    assert registry.save() is False  # nothing changed: no entry lost
    assert len(read_json(empty_registry / DISCOVERED)) == 2
    entries = registry.ensure_loaded()
    assert sorted(entries) == ["qwen2.5vl_7b_(Q4_K_M)", "qwen3_8b_(Q4_K_M)"]
    registry.get("qwen3_8b_(Q4_K_M)").deprecated = True
    assert registry.save() is True
    stored = {e["name"]: e for e in read_json(empty_registry / DISCOVERED)}
    assert stored["qwen3_8b_(Q4_K_M)"]["deprecated"] is True and len(stored) == 2

    kept = Registry(load_config([f"registry.dir={empty_registry}"]))
    import_ollama(kept, url=ollama.url)  # the Python API keeps them by default
    assert sorted(kept.entries) == sorted(entries)
