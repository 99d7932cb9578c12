"""The refresh report validates against its own schema in every case (issue 17 item 8):
models never hashed, locked models whose files are missing, Ollama models, and
the real ImageWorks registry (none of whose files are on this host)."""

from __future__ import annotations

import json
import subprocess

import jsonschema
from conftest import CLI, CURATED, DISCOVERED, REAL_REGISTRY, ROOT, copy_registry, write_json
from pipeline_support import make_model, model_entry

SCHEMA = json.loads((ROOT / "docs" / "refresh-report.schema.json").read_text())


def _refresh(registry, tmp_path) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(
        [str(CLI), "refresh", f"registry.dir={registry}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **__import__("os").environ,
            "OLLAMA_MODELS": str(tmp_path / "ollama-models"),
            "TMPDIR": str(tmp_path),
        },
        timeout=180,
    )
    return proc, json.loads(proc.stdout)


def test_a_report_with_unhashed_missing_locked_and_ollama_models_validates(tmp_path):
    here = make_model(tmp_path / "weights" / "here", 1)
    gone = tmp_path / "weights" / "gone"
    registry = tmp_path / "registry"
    registry.mkdir()
    write_json(
        registry / CURATED,
        [
            model_entry("here", here),
            model_entry("unhashed_(A)", gone),  # never hashed: aggregate "" in the layers
            model_entry("locked_(B)", gone / "b"),
            {
                "name": "qwen3_8b_(Q4_K_M)",
                "backend": "ollama",
                "backend_config": {"port": 11434, "model_path": "ollama:/qwen3:8b"},
                "served_model_id": "qwen3:8b",
            },
        ],
    )
    write_json(
        registry / DISCOVERED,
        [
            {"name": "unhashed_(A)", "artifacts": {"aggregate_sha256": "", "files": []}},
            {
                "name": "locked_(B)",
                "artifacts": {"aggregate_sha256": "", "files": []},
                "version_lock": {
                    "locked": True,
                    "expected_aggregate_sha256": "",
                    "last_verified": None,
                },
            },
        ],
    )
    proc, report = _refresh(registry, tmp_path)
    assert proc.returncode == 0, proc.stderr
    jsonschema.validate(report, SCHEMA)
    models = {m["name"]: m for m in report["models"]}
    assert models["here"]["aggregate_sha256"] and models["here"]["on_host"]
    for name in ("unhashed_(A)", "locked_(B)", "qwen3_8b_(Q4_K_M)"):
        assert models[name]["aggregate_sha256"] is None, name
        assert not models[name]["on_host"] and models[name]["skipped"], name
    assert models["locked_(B)"]["lock"]["expected_aggregate_sha256"] is None


def test_the_real_imageworks_registrys_report_validates(tmp_path):
    registry = copy_registry(REAL_REGISTRY, tmp_path / "real")
    proc, report = _refresh(registry, tmp_path)
    assert proc.returncode == 0, proc.stderr
    jsonschema.validate(report, SCHEMA)
    assert report["counts"]["models"] == len(report["models"]) > 0
