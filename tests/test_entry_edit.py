"""set, unset, promote, demote: checked, locked, format-keeping edits of the
layer files, on copies of the demo registry (real files, the real CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import CURATED, DISCOVERED, ROOT, folder_digest, read_json

QWEN3 = "qwen3_8b_(Q4_K_M)"
NOMIC = "nomic-embed-text_(F16)"
FLORENCE = "florence-2-large_(FP16)"


@pytest.fixture
def run(demo_registry, capsys):
    """The CLI in-process against the demo copy: (exit code, stdout, stderr)."""
    from loader.frontdoors.cli import main

    def call(*args: str):
        code = main([*args, f"registry.dir={demo_registry}"])
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def entry_in(path, name):
    return next((e for e in read_json(path) if e["name"] == name), None)


def explain_source(run, name, field):
    code, out, err = run("explain", name)
    assert code == 0, err
    return next(row for row in json.loads(out)["fields"] if row["field"] == field)


def test_set_changes_only_that_fields_lines_and_explain_shows_it_curated(run, demo_registry):
    before = (demo_registry / CURATED).read_text().splitlines()
    code, out, err = run("set", QWEN3, "display_name=Qwen3 8B", "backend_config.port=11435")
    assert code == 0, err
    assert json.loads(out)["changes"] == [
        {"field": "display_name", "before": "Qwen3 8B (Q4_K_M)", "after": "Qwen3 8B"},
        {"field": "backend_config.port", "before": None, "after": 11435},
    ]
    after = (demo_registry / CURATED).read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [
        ('    "display_name": "Qwen3 8B (Q4_K_M)",', '    "display_name": "Qwen3 8B",'),
        ('      "port": null,', '      "port": 11435,'),
    ]
    row = explain_source(run, QWEN3, "backend_config.port")
    assert row == {"field": "backend_config.port", "value": 11435, "source": "curated"}


def test_values_parse_as_set_does_and_a_new_name_makes_a_curated_entry(run, demo_registry):
    code, out, err = run(
        "set", "my-model", "backend=vllm", "backend_config.model_path=/srv/models/m",
        'roles=["caption"]', "role_priority.caption=5",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["created"] is True
    entry = entry_in(demo_registry / CURATED, "my-model")
    assert entry == {
        "name": "my-model",
        "backend": "vllm",
        "backend_config": {"model_path": "/srv/models/m"},
        "roles": ["caption"],
        "role_priority": {"caption": 5},
    }
    assert entry_in(demo_registry / DISCOVERED, "my-model") is None  # no dynamic fields
    assert explain_source(run, "my-model", "roles")["source"] == "curated"


def test_unset_removes_the_field_and_the_other_layer_shows(run, demo_registry):
    code, _, err = run("unset", QWEN3, "display_name")
    assert code == 0, err
    assert "display_name" not in entry_in(demo_registry / CURATED, QWEN3)
    assert explain_source(run, QWEN3, "display_name")["source"] == "discovered"


def test_a_dynamic_field_goes_into_discovered_only_with_layer(run, demo_registry):
    code, _, err = run("set", QWEN3, "download_size_bytes=123", "--layer", "discovered")
    assert code == 0, err
    assert entry_in(demo_registry / DISCOVERED, QWEN3)["download_size_bytes"] == 123
    assert explain_source(run, QWEN3, "download_size_bytes")["source"] == "discovered"


def test_dry_run_prints_the_diff_and_writes_nothing(run, demo_registry):
    before = folder_digest(demo_registry)
    code, out, err = run("set", QWEN3, "deprecated=true", "--dry-run")
    assert code == 0, err
    assert '-    "deprecated": false,' in out and '+    "deprecated": true,' in out
    assert out.startswith(f"--- {demo_registry / CURATED}")
    assert folder_digest(demo_registry) == before


def test_promote_pins_discovered_values_and_demote_unpins_them(run, demo_registry):
    assert entry_in(demo_registry / CURATED, NOMIC) is None  # discovered only
    code, out, err = run("promote", NOMIC, "display_name", "served_model_id")
    assert code == 0, err
    assert json.loads(out)["promoted"] == ["display_name", "served_model_id"]
    discovered = entry_in(demo_registry / DISCOVERED, NOMIC)
    assert entry_in(demo_registry / CURATED, NOMIC) == {
        "name": NOMIC,
        "display_name": discovered["display_name"],
        "served_model_id": discovered["served_model_id"],
    }
    assert explain_source(run, NOMIC, "display_name")["source"] == "curated"

    code, out, err = run("demote", NOMIC)
    assert code == 0, err
    assert json.loads(out)["demoted"] == ["display_name", "served_model_id"]
    assert entry_in(demo_registry / CURATED, NOMIC) is None  # nothing left to pin
    assert explain_source(run, NOMIC, "display_name")["source"] == "discovered"


def test_promote_without_fields_takes_every_static_field_curated_lacks(run, demo_registry):
    code, out, err = run("promote", NOMIC)
    assert code == 0, err
    promoted = json.loads(out)["promoted"]
    assert "backend" in promoted and "capabilities" in promoted
    dynamic = {"artifacts", "version_lock", "performance", "probes", "downloaded_at"}
    assert not dynamic & set(promoted)
    assert not any(p.startswith("download_") for p in promoted)


def test_demote_moves_a_curated_only_value_into_discovered(run, demo_registry):
    code, _, err = run("set", FLORENCE, "license=apache-2.0")
    assert code == 0, err
    code, _, err = run("demote", FLORENCE, "license")
    assert code == 0, err
    assert "license" not in entry_in(demo_registry / CURATED, FLORENCE)
    assert explain_source(run, FLORENCE, "license")["value"] in ("mit", "apache-2.0")


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("set", QWEN3, "backend_config.port=abc"), "backend_config.port: not an integer"),
        (("set", QWEN3, "backend_config.nope=1"), "unknown field 'nope' of backend_config"),
        (("set", QWEN3, "nope=1"), "unknown field 'nope'"),
        (("set", QWEN3, "roles=7"), "roles: not a list"),
        (("set", QWEN3, "artifacts.aggregate_sha256=x"), "use --layer discovered"),
        (("set", "new-one", "display_name=x"), "needs its backend"),
        (("set", QWEN3, "display_name"), "expected FIELD=VALUE"),
        (("unset", QWEN3, "license_nope"), "unknown field"),
        (("unset", NOMIC, "display_name"), "the curated layer does not hold it"),
        (("promote", QWEN3, "download_path"), "a dynamic field"),
        (("promote", FLORENCE, "backend_alternatives.x"), "is not an object"),
        (("promote", NOMIC, "source"), "the discovered layer does not hold it"),
        (("demote", NOMIC, "display_name"), "the curated layer does not hold it"),
        (("set", "nope_(X)", "display_name=x", "--layer", "both"), "invalid choice"),
    ],
)
def test_bad_edits_are_one_line_exit_1_and_change_nothing(run, demo_registry, args, expect):
    before = folder_digest(demo_registry)
    code, out, err = run(*args)
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and expect in err, err
    assert folder_digest(demo_registry) == before


def test_a_masked_discovered_value_is_still_type_checked(run, demo_registry):
    before = folder_digest(demo_registry)
    code, _, err = run("set", QWEN3, "backend_config.port=abc", "--layer", "discovered")
    assert code == 1 and "backend_config.port: not an integer" in err
    assert str(demo_registry / DISCOVERED) in err
    assert folder_digest(demo_registry) == before


def test_set_refuses_a_symlinked_layer(run, demo_registry, tmp_path):
    target = tmp_path / "elsewhere.json"
    (demo_registry / CURATED).rename(target)
    (demo_registry / CURATED).symlink_to(target)
    before = target.read_bytes()
    code, _, err = run("set", QWEN3, "deprecated=true")
    assert code == 1 and "is a symlink" in err and len(err.strip().splitlines()) == 1
    assert target.read_bytes() == before and (demo_registry / CURATED).is_symlink()


def test_concurrent_sets_of_different_entries_all_persist(demo_registry):
    names = [f"model-{i}" for i in range(6)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "loader",
                "set",
                n,
                "backend=vllm",
                f"registry.dir={demo_registry}",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for n in names
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    curated = {e["name"] for e in read_json(demo_registry / CURATED)}
    assert set(names) <= curated


def test_the_hydra_app_takes_assignments_as_a_list(demo_registry):
    result = subprocess.run(
        [
            sys.executable, "-m", "loader.apps", "set", f"name='{QWEN3}'",
            "assignments=['deprecated=true']", f"registry.dir={demo_registry}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert entry_in(demo_registry / CURATED, QWEN3)["deprecated"] is True


def test_set_repairs_a_registry_that_does_not_load(run, demo_registry):
    from conftest import write_json

    curated = read_json(demo_registry / CURATED)
    next(e for e in curated if e["name"] == QWEN3)["backend_config"]["port"] = "abc"
    write_json(demo_registry / CURATED, curated)
    code, _, err = run("list")
    assert code == 1 and "backend_config.port: not an integer" in err
    code, _, err = run("set", QWEN3, "backend_config.port=11434")
    assert code == 0, err
    code, _, err = run("list")
    assert code == 0, err
