"""The scheduled CI refresh: `doit refresh` and `imageworks-loader refresh`, profile=ci."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import jsonschema
import pytest
import yaml
from conftest import CLI, ROOT, read_json
from pipeline_support import SHARDS, importer_site  # noqa: F401 (a fixture)

SCHEMA = json.loads((ROOT / "docs" / "refresh-report.schema.json").read_text())


@pytest.fixture
def site(importer_site, tmp_path):  # noqa: F811 (the fixture imported above)
    """profile=ci re-imports: the site has an Ollama stand-in and weights to rediscover."""
    importer_site.env["IMAGEWORKS_REFRESH_REPORT"] = str(tmp_path / "out" / "report.json")
    importer_site.env["IMAGEWORKS_REFRESH_SUMMARY"] = str(tmp_path / "out" / "summary.md")
    return importer_site


def cli_refresh(site, *args):
    return subprocess.run(
        [str(CLI), "refresh", *args, f"registry.dir={site.registry}"],
        capture_output=True,
        text=True,
        env=site.env,
        cwd=site.registry.parent,
        timeout=180,
    )


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_doit_refresh_with_the_ci_profile_writes_a_valid_report(site, tmp_path):
    run = site.doit("refresh", overrides=("profile=ci",))
    assert run.returncode == 0, run.stderr
    logs = json_lines(run.stderr)  # every stderr line is one JSON object
    assert {"level", "event", "task", "time"} <= set(logs[0])
    assert any(e["event"] == "done" and e["task"] == "hash:alpha" for e in logs)

    report = read_json(tmp_path / "out" / "report.json")
    jsonschema.validate(report, SCHEMA)
    assert report["ok"] and report["exit_code"] == 0 and report["profile"] == "ci"
    models = {m["name"]: m for m in report["models"]}
    assert models["alpha"]["ran"] == ["hash", "verify"]
    assert models["alpha"]["lock"]["status"] == "unlocked"
    assert len(models["alpha"]["files"]) == len(SHARDS)
    assert models["alpha"]["aggregate_sha256"] == next(
        e["artifacts"]["aggregate_sha256"] for e in site.discovered() if e["name"] == "alpha"
    )
    assert set(models["alpha"]["durations_s"]) == {"hash", "verify"}
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert summary.startswith("## imageworks-loader refresh passed")
    assert "| `beta_(Q4_K_M)` | ran | ran | unlocked |" in summary


def test_the_cli_refresh_runs_the_same_graph_and_exits_2_on_a_violation(site, tmp_path):
    first = cli_refresh(site, "profile=ci")
    assert first.returncode == 0, first.stderr
    printed = json.loads(first.stdout)
    assert printed == read_json(tmp_path / "out" / "report.json")
    jsonschema.validate(printed, SCHEMA)

    # same graph, same doit state; the first runs also hash what the importers found
    again = site.doit("refresh", overrides=("profile=ci",))
    again = site.doit("refresh", overrides=("profile=ci",))
    tasks = {t["task"]: t["status"] for t in read_json(tmp_path / "out" / "report.json")["tasks"]}
    assert again.returncode == 0, again.stderr
    # the importers read live sources, so they run every time; nothing else had to
    assert tasks.pop("import:ollama") == tasks.pop("rediscover") == "ran"
    assert set(tasks.values()) == {"up-to-date"}, tasks

    locked = subprocess.run(
        [str(CLI), "lock", "alpha", "--set-expected", f"registry.dir={site.registry}"],
        capture_output=True,
        text=True,
        env=site.env,
    )
    assert locked.returncode == 0, locked.stderr
    (site.models["alpha"] / SHARDS[2]).write_bytes(b"tampered")
    failed = cli_refresh(site, "profile=ci")
    assert failed.returncode == 2, failed.stderr
    report = json.loads(failed.stdout)
    jsonschema.validate(report, SCHEMA)
    alpha = next(m for m in report["models"] if m["name"] == "alpha")
    assert alpha["failed"] and alpha["lock"]["status"] == "violated"
    assert alpha["lock"]["changed_files"] == [SHARDS[2]]
    assert report["counts"]["lock_violations"] == 1
    assert [e["task"] for e in report["errors"]] == ["verify:alpha"]
    not_run = [t["task"] for t in report["tasks"] if t["status"] == "not-run"]
    assert not_run == ["snapshot"]
    errors = [e for e in json_lines(failed.stderr) if e["level"] == "error"]
    assert errors[0]["task"] == "verify:alpha" and errors[0]["exit_code"] == 2
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "failed (exit 2)" in summary and "version lock violated" in summary


def test_the_default_profile_keeps_the_report_in_the_state_folder(site):
    run = cli_refresh(site)
    assert run.returncode == 0, run.stderr
    state = site.registry / ".imageworks-state"
    assert read_json(state / "refresh-report.json")["profile"] == "default"
    assert (state / "refresh-summary.md").is_file()
    assert not run.stderr.strip().startswith("{")  # text logs outside the CI profile


def test_the_guide_shows_the_shipped_workflow_in_full():
    guide = (ROOT / "docs" / "scheduled-refresh.md").read_text()
    shipped = (ROOT / "docs" / "examples" / "registry-refresh.yml").read_text()
    assert f"```yaml\n{shipped}```" in guide
    workflow = yaml.safe_load(shipped)
    steps = workflow["jobs"]["refresh"]["steps"]
    runs = " ".join(step.get("run", "") for step in steps)
    assert workflow[True]["schedule"][0]["cron"]  # YAML reads the key `on` as True
    assert "imageworks-loader refresh profile=ci" in runs
    assert any("upload-artifact" in step.get("uses", "") for step in steps)
    assert any("create-pull-request" in step.get("uses", "") for step in steps)


MERGE = ROOT / "docs" / "examples" / "merge_reports.py"


def merge(*reports):
    return subprocess.run(
        [sys.executable, str(MERGE), *map(str, reports)], capture_output=True, text=True
    )


def test_reports_of_a_fleet_merge_and_a_lock_seen_nowhere_fails(site, tmp_path):
    assert cli_refresh(site, "profile=ci").returncode == 0
    one = read_json(tmp_path / "out" / "report.json")
    other = copy.deepcopy(one)
    other["host"] = "gpu-2"
    for model in other["models"]:  # gpu-2 has only beta's weights
        if model["name"] == "alpha":
            model.update(on_host=False, skipped="not here")
    (tmp_path / "a.json").write_text(json.dumps(one))
    (tmp_path / "b.json").write_text(json.dumps(other))
    merged = merge(tmp_path / "a.json", tmp_path / "b.json")
    assert merged.returncode == 0, merged.stderr
    fleet = json.loads(merged.stdout)
    assert [h["host"] for h in fleet["hosts"]] == sorted([one["host"], "gpu-2"])
    models = {m["name"]: m for m in fleet["models"]}
    assert list(models["alpha"]["hosts"]) == [one["host"]]
    assert models["beta_(Q4_K_M)"]["verified_on"] == sorted([one["host"], "gpu-2"])

    for model in other["models"]:  # gpu-2 holds different bytes under beta's name
        if model["name"] == "beta_(Q4_K_M)":
            model["aggregate_sha256"] = "0" * 64
    (tmp_path / "b.json").write_text(json.dumps(other))
    disagree = merge(tmp_path / "a.json", tmp_path / "b.json")
    assert disagree.returncode == 2
    assert "beta_(Q4_K_M): hosts disagree about the aggregate" in disagree.stderr


def test_the_summary_names_skipped_models_and_why(site, tmp_path):
    curated = site.curated()
    curated += [
        {**curated[0], "name": "elsewhere", "backend_config": {"model_path": "/nonexistent/m"}},
        {**curated[0], "name": "gone-free", "backend_config": {"model_path": "/nonexistent/n"}},
        {
            **curated[0],
            "name": "vl-not-served",
            "backend": "vllm",
            "capabilities": {"vision": True},
        },
    ]
    site.write_curated(curated)
    site.write_discovered([{"name": "elsewhere", "version_lock": {"locked": True}}])
    run = cli_refresh(site)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    # (the whole report's validity with unhashed models is issue 17's test)
    fields = SCHEMA["$defs"]["model"]["properties"]
    for model in report["models"]:
        jsonschema.validate(model["skipped"], fields["skipped"])
        jsonschema.validate(model["skipped_tasks"], fields["skipped_tasks"])
    models = {m["name"]: m for m in report["models"]}
    assert models["elsewhere"]["skipped"].startswith("locked, files missing")
    assert models["gone-free"]["skipped"].startswith("files missing")
    assert models["vl-not-served"]["skipped_tasks"]["probe"].startswith("not served")
    summary = (site.registry / ".imageworks-state" / "refresh-summary.md").read_text()
    assert "### Skipped (3)" in summary
    assert "- `elsewhere`: locked, files missing" in summary
    assert "- `gone-free`: files missing" in summary
    assert "- `vl-not-served`: probe: not served" in summary


def test_a_runner_without_ollama_fails_only_the_import_task(site):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    site.env["OLLAMA_HOST"] = f"http://127.0.0.1:{closed}"
    run = cli_refresh(site, "profile=ci")
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    tasks = {t["task"]: t for t in report["tasks"]}
    assert tasks["import:ollama"]["status"] == "failed"
    assert tasks["import:ollama"]["exit_code"] == 1
    assert [e["task"] for e in report["errors"]] == ["import:ollama"]
    # everything else ran: the snapshot is regenerated
    others = {name: t["status"] for name, t in tasks.items() if name != "import:ollama"}
    assert tasks["snapshot"]["status"] == "ran" and "failed" not in others.values(), others
    assert "not-run" not in others.values()

    # The documented switch: leave the import out.
    off = cli_refresh(site, "profile=ci", "profile.import_ollama=false")
    assert off.returncode == 0, off.stderr
    assert "import:ollama" not in {t["task"] for t in json.loads(off.stdout)["tasks"]}


def test_merging_keys_reports_by_host_and_run_and_says_what_it_replaced(site, tmp_path):
    assert cli_refresh(site, "profile=ci").returncode == 0
    first = read_json(tmp_path / "out" / "report.json")
    later = copy.deepcopy(first)
    later["started_at"] = "2999-01-01T00:00:00+00:00"  # the same host, a later run
    for model in later["models"]:
        if model["name"] == "alpha":
            model["aggregate_sha256"] = "1" * 64
    paths = []
    for label, report in (("first", first), ("again", first), ("later", later)):
        paths.append(tmp_path / f"{label}.json")
        paths[-1].write_text(json.dumps(report))
    merged = merge(*paths)
    assert merged.returncode == 0, merged.stderr  # runs of one host never "disagree"
    fleet = json.loads(merged.stdout)
    assert [(h["host"], h["run"]) for h in fleet["hosts"]] == [(first["host"], later["started_at"])]
    models = {m["name"]: m for m in fleet["models"]}
    assert models["alpha"]["aggregates"] == ["1" * 64]  # the later run counts
    whys = sorted(r["why"] for r in fleet["replaced"])
    assert whys == ["a later run of the same host", "the same run given twice"]
    lines = merged.stderr.strip().splitlines()
    assert len(lines) == 2 and all("replaced by" in line for line in lines)
    assert any(str(paths[0]) in line and str(paths[1]) in line for line in lines)
