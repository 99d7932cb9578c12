"""audit: every finding on a registry built to have it, --fix and --dry-run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import CURATED, DISCOVERED, folder_digest, read_json, write_json

FIELDS = {"severity", "code", "entry", "field", "layer", "message"}


@pytest.fixture
def run(capsys):
    from loader.frontdoors.cli import main

    def call(folder, *args: str):
        code = main([*args, f"registry.dir={folder}"])
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def findings(out: str) -> list[dict]:
    rows = [json.loads(line) for line in out.splitlines()]
    for row in rows:
        assert set(row) >= FIELDS
    return rows


def codes(rows, entry=None) -> set[str]:
    return {r["code"] for r in rows if entry is None or r["entry"] == entry}


@pytest.fixture
def messy(tmp_path):
    """A registry with one of each mistake."""
    folder = tmp_path / "reg"
    folder.mkdir()
    weights = tmp_path / "weights"
    (weights / "a").mkdir(parents=True)
    (weights / "a" / "config.json").write_text("{}")
    old = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    curated = [
        {
            "name": "a",
            "backend": "vllm",
            "display_name": "A",
            "served_model_id": "None",
            "artifacts": {"aggregate_sha256": "abc"},
            "chat_template": {"source": "extracted", "path": str(tmp_path / "gone.jinja")},
            "roles": ["caption"],
            "capabilities": {"vision": True},
        },
        {"name": "orphan", "display_name": "left behind"},
        {"name": "eyes", "quantization": "q4"},
        {"name": "pinned", "backend": "ollama", "family": "f"},
    ]
    discovered = [
        {"name": "a", "display_name": "A", "download_path": str(weights / "a")},
        {"name": "a-copy", "backend": "vllm", "download_path": str(weights / "a") + "/"},
        {
            "name": "pinned",
            "backend": "ollama",
            "served_model_id": "t:1",
            "version_lock": {"locked": True},
            "metadata": {"ollama_missing_since": old},
        },
        {"name": "pinned-2", "backend": "ollama", "served_model_id": "t:1"},
        {
            "name": "eyes",
            "backend": "ollama",
            "capabilities": {"vision": True},
            "roles": ["keywords"],
            "probes": {"vision": {"vision_ok": False, "notes": "said red", "timestamp": old}},
        },
        {
            "name": "old-eyes",
            "backend": "ollama",
            "capabilities": {"vision": True},
            "probes": {"vision": {"vision_ok": True, "timestamp": old}},
            "backend_config": {"model_path": str(tmp_path / "nowhere")},
        },
    ]
    write_json(folder / CURATED, curated)
    write_json(folder / DISCOVERED, discovered)
    return folder


def test_each_finding_names_entry_field_layer_and_fix(run, messy):
    code, out, err = run(messy, "audit")
    assert code == 1, err  # errors found
    rows = findings(out)
    by = {(r["code"], r["entry"]): r for r in rows}
    assert by[("dynamic-in-curated", "a")]["layer"] == "curated"
    assert by[("dynamic-in-curated", "a")]["field"] == "artifacts"
    placeholder = by[("placeholder-string", "a")]
    assert placeholder["field"] == "served_model_id" and placeholder["fix"] == "set it to null"
    assert by[("duplicate-download", "a-copy")]["severity"] == "error"
    assert "'a'" in by[("duplicate-download", "a-copy")]["message"]
    assert "'pinned'" in by[("duplicate-served-id", "pinned-2")]["message"]
    template = by[("missing-path", "a")]
    assert template["field"] == "chat_template.path" and template["layer"] == "curated"
    assert "without --chat-template" in template["message"]
    assert by[("missing-path", "old-eyes")]["field"] == "backend_config.model_path"
    lock = by[("lock-without-expected", "pinned")]
    assert lock["severity"] == "error" and "--set-expected" in lock["fix"]
    assert by[("vision-probe-failed", "eyes")]["severity"] == "warning"
    assert by[("vision-probe-stale", "old-eyes")]["severity"] == "info"
    assert by[("vision-unprobed", "a")]["severity"] == "info"
    assert by[("orphan-override", "orphan")]["layer"] == "curated"
    assert by[("orphan-override", "orphan")]["severity"] == "warning"
    partly = by[("orphan-override", "eyes")]  # quantization: discovered has none
    assert partly["field"] == "quantization" and partly["severity"] == "info"
    assert "display_name" in by[("redundant-override", "a")]["message"]
    assert "family" not in by.get(("redundant-override", "pinned"), {"message": ""})["message"]
    assert by[("ollama-missing", "pinned")]["field"] == "metadata.ollama_missing_since"
    roles = [r for r in rows if r["code"] == "role-without-models"]
    # caption needs vision and 'a' has it; keywords' only model is... eyes, which has it
    assert {r["message"].split("'")[1] for r in roles} == {"description", "narration"}
    severities = [r["severity"] for r in rows]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)


def test_names_narrow_the_findings(run, messy):
    code, out, _ = run(messy, "audit", "eyes")
    assert code == 0
    assert codes(findings(out)) == {"vision-probe-failed", "orphan-override"}


def test_dry_run_shows_the_lossless_fixes_and_writes_nothing(run, messy):
    before = folder_digest(messy)
    code, out, err = run(messy, "audit", "--fix", "--dry-run")
    assert code == 0, err
    assert out.startswith("--- ")
    assert '-    "served_model_id": "None",' in out and '+    "served_model_id": null,' in out
    assert '-    "display_name": "A",' in out  # equal to discovered: dropped
    assert folder_digest(messy) == before


def test_fix_applies_only_what_loses_nothing(run, messy):
    resolved_before = _resolved(run, messy)
    code, out, err = run(messy, "audit", "--fix")
    assert code == 1, err  # the duplicate download and the lock remain
    fixed = {(r["code"], r["entry"]) for r in findings(out) if r.get("fixed")}
    assert fixed == {
        ("dynamic-in-curated", "a"),
        ("placeholder-string", "a"),
        ("redundant-override", "a"),
        ("redundant-override", "pinned"),
    }
    curated = {e["name"]: e for e in read_json(messy / CURATED)}
    assert "artifacts" not in curated["a"] and "display_name" not in curated["a"]
    assert curated["a"]["served_model_id"] is None
    assert curated["pinned"] == {"name": "pinned", "family": "f"}
    discovered = {e["name"]: e for e in read_json(messy / DISCOVERED)}
    assert discovered["a"]["artifacts"] == {"aggregate_sha256": "abc"}
    after = _resolved(run, messy)
    assert after["a"]["artifacts"] == resolved_before["a"]["artifacts"]
    assert after["a"]["display_name"] == resolved_before["a"]["display_name"]
    _, again, _ = run(messy, "audit")
    assert not {"dynamic-in-curated", "placeholder-string", "redundant-override"} & codes(
        findings(again)
    )


def test_a_dynamic_field_whose_curated_copy_is_masked_is_not_moved(run, tmp_path):
    folder = tmp_path / "reg"
    folder.mkdir()
    write_json(folder / CURATED, [{"name": "m", "backend": "vllm", "performance": {"x": 1}}])
    write_json(folder / DISCOVERED, [{"name": "m", "performance": {"x": 2}}])
    before = [(folder / f).read_bytes() for f in (CURATED, DISCOVERED)]
    code, out, _ = run(folder, "audit", "--fix")
    (row,) = [r for r in findings(out) if r["code"] == "dynamic-in-curated"]
    assert "fixed" not in row and "already wins" in row["fix"]
    assert [(folder / f).read_bytes() for f in (CURATED, DISCOVERED)] == before


def test_the_demo_registry_has_no_errors(run, demo_registry):
    code, out, err = run(demo_registry, "audit")
    assert code == 0, out + err
    assert "placeholder-string" in codes(findings(out))


def _resolved(run, folder) -> dict:
    from loader.config import load_config
    from loader.registry.core import Registry

    registry = Registry(load_config([f"registry.dir={folder}"]))
    return {n: e.model_dump() for n, e in registry.ensure_loaded().items()}


def test_doit_audit_runs_when_named_and_fails_on_errors(messy):
    import subprocess

    from conftest import ROOT
    from pipeline_support import DODO, PYTHON

    def doit(*words):
        return subprocess.run(
            [PYTHON, "-m", "doit", "-f", str(DODO), *words, f"registry.dir={messy}"],
            capture_output=True, text=True, cwd=ROOT, timeout=180,
        )  # fmt: skip

    plain = doit("list")
    assert plain.returncode == 0, plain.stderr
    assert "audit" in plain.stdout.split()
    named = doit("audit")
    assert named.returncode != 0
    failure = [ln for ln in named.stderr.splitlines() if ln.startswith("doit: audit")]
    assert len(failure) == 1 and "duplicate-download 'a-copy'" in failure[0], named.stderr


def test_fix_on_the_real_registry_changes_no_resolved_value_but_placeholders(run, real_registry):
    from loader.upkeep.audit import PLACEHOLDERS

    def normalised(value):
        if isinstance(value, dict):
            return {k: normalised(v) for k, v in value.items()}
        if isinstance(value, list):
            return [normalised(v) for v in value]
        return None if isinstance(value, str) and value.strip() in PLACEHOLDERS else value

    before = _resolved(run, real_registry)
    code, out, err = run(real_registry, "audit", "--fix")
    assert "Traceback" not in err
    assert any(r.get("fixed") for r in findings(out))
    after = _resolved(run, real_registry)
    assert normalised(after) == normalised(before)
    _, again, _ = run(real_registry, "audit")
    assert "placeholder-string" not in codes(findings(again))
    # ImageWorks' own "none" (no chat template) is a value, not a placeholder
    sources = {e["chat_template"]["source"] for e in after.values()}
    assert "none" in sources
