"""The ``imageworks-loader`` CLI, run as a real process on copies of real registries."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import (
    CLI,
    CURATED,
    DISCOVERED,
    REAL_REGISTRY,
    SNAPSHOT,
    copy_registry,
    folder_digest,
    json_stream,
    read_json,
    run_cli,
    write_json,
)

CANONICAL_CAPABILITIES = ["text", "vision", "audio", "embedding", "tools", "thinking", "reasoning"]
LIST_KEYS = {"name", "backend", "locked", "vision", "roles", "hash", "verify"}
SELECT_KEYS = {"logical_name", "endpoint", "backend", "internal_model_id", "capabilities"}
ISSUE_COMMANDS = ["list", "select", "metrics", "explain"]
SOURCES = {"curated", "discovered", "default", "override"}

# Demo registry (configs/): entries that interpolate ${backends.vllm.port} ...
DEMO_VLLM_INTERPOLATED = ["florence-2-large_(FP16)", "qwen2.5-vl-7b-instruct_(AWQ)"]
DEMO_QWEN_VL = "qwen2.5-vl-7b-instruct_(AWQ)"
DEMO_LLAMA_NONE_ID = "llama3.1_8b_(Q5_K_M)"
DEMO_NAMES = {
    "florence-2-large_(FP16)",
    "llama3.1_8b_(Q5_K_M)",
    "nomic-embed-text_(F16)",
    "qwen2.5-vl-7b-instruct_(AWQ)",
    "qwen3_8b_(Q4_K_M)",
}


def on(folder: Path) -> str:
    return f"registry.dir={folder}"


def succeeded(result) -> object:
    """The JSON a successful run printed; nothing else on stdout or stderr."""
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return result.json()


def discovered_aggregates(folder: Path) -> dict[str, str]:
    return {
        e["name"]: (e.get("artifacts") or {}).get("aggregate_sha256") or ""
        for e in read_json(folder / DISCOVERED)
    }


def one_layer_registry(folder: Path, entries: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / CURATED, entries)
    return folder


def empty_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- list -----------------------------------------------------------------------


def test_list_on_the_real_registry_gives_16_rows_with_exactly_the_documented_keys(
    real_registry,
):
    rows = succeeded(run_cli("list", on(real_registry)))
    assert isinstance(rows, list) and len(rows) == 16
    for row in rows:
        assert set(row) == LIST_KEYS
        assert isinstance(row["locked"], bool) and isinstance(row["vision"], bool)
        assert isinstance(row["roles"], list)
    names = [row["name"] for row in rows]
    assert names == sorted(names)


def test_list_hash_is_the_first_12_hex_digits_of_the_aggregate_or_empty(real_registry):
    aggregates = discovered_aggregates(REAL_REGISTRY)
    rows = succeeded(run_cli("list", on(real_registry)))
    for row in rows:
        assert row["hash"] == aggregates[row["name"]][:12]
        assert re.fullmatch(r"([0-9a-f]{12})?", row["hash"])
    assert any(row["hash"] for row in rows) and any(not row["hash"] for row in rows)


def test_list_role_filter_keeps_exactly_the_entries_with_that_role(real_registry):
    everything = succeeded(run_cli("list", on(real_registry)))
    expected = [row for row in everything if "caption" in row["roles"]]
    captioners = succeeded(run_cli("list", "--role", "caption", on(real_registry)))
    assert captioners == expected
    assert 0 < len(captioners) < len(everything)


def test_list_with_a_role_no_entry_has_is_an_empty_array(real_registry):
    assert succeeded(run_cli("list", "--role", "no-such-role", on(real_registry))) == []


def test_list_reports_discovered_lock_and_dict_shaped_vision_on_the_demo(demo_registry):
    rows = {row["name"]: row for row in succeeded(run_cli("list", on(demo_registry)))}
    assert set(rows) == DEMO_NAMES
    # version_lock is dynamic: the discovered layer's lock shows
    assert rows[DEMO_QWEN_VL]["locked"] is True
    assert rows["qwen3_8b_(Q4_K_M)"]["locked"] is False
    # {"enabled": true, "target_long_edge": 768} counts as vision
    assert rows["florence-2-large_(FP16)"]["vision"] is True
    assert rows["qwen3_8b_(Q4_K_M)"]["vision"] is False


# --- select ---------------------------------------------------------------------


def test_select_returns_the_documented_keys_and_the_imageworks_capability_map(real_registry):
    selected = succeeded(run_cli("select", "qwen3_8b_(Q4_K_M)", on(real_registry)))
    assert set(selected) == SELECT_KEYS
    assert selected["logical_name"] == "qwen3_8b_(Q4_K_M)"
    assert selected["backend"] == "ollama"
    assert selected["endpoint"] == "http://imageworks-ollama:11434/v1"
    assert selected["internal_model_id"] == "qwen3:8b"
    # Issue 9: the canonical seven first, then every key the ImageWorks loader printed.
    assert list(selected["capabilities"])[:7] == CANONICAL_CAPABILITIES
    canonical = {k: selected["capabilities"][k] for k in CANONICAL_CAPABILITIES}
    assert canonical == {
        "text": True,
        "vision": False,
        "audio": False,
        "embedding": False,
        "tools": True,
        "thinking": False,
        "reasoning": False,
    }
    stored = next(
        e for e in read_json(real_registry / SNAPSHOT) if e["name"] == "qwen3_8b_(Q4_K_M)"
    )["capabilities"]
    assert {k: selected["capabilities"][k] for k in stored} == stored


def test_select_counts_a_dict_shaped_vision_capability_by_its_enabled_flag(real_registry):
    selected = succeeded(run_cli("select", "qwen2.5vl_7b_(Q4_K_M)", on(real_registry)))
    assert selected["capabilities"]["vision"] is True


def test_select_require_vision_on_a_text_model_fails_naming_the_capability(real_registry):
    result = run_cli("select", "gpt-oss-20b_(MXFP4)", "--require-vision", on(real_registry))
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "vision" in result.stderr and "gpt-oss-20b_(MXFP4)" in result.stderr


def test_select_require_vision_on_a_vision_model_succeeds(real_registry):
    selected = succeeded(
        run_cli("select", "qwen3-vl-8b-instruct_(FP8)", "--require-vision", on(real_registry))
    )
    assert selected["capabilities"]["vision"] is True


def test_select_unknown_model_exits_1_naming_it(real_registry):
    result = run_cli("select", "no-such-model", on(real_registry))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no-such-model" in result.stderr


ENDPOINT_CASES = [
    (
        "base-url-wins-over-host-and-port",
        {
            "backend": "vllm",
            "backend_config": {
                "base_url": "http://proxy:9999/v1",
                "host": "http://other:1/v1",
                "port": 1234,
            },
        },
        "http://proxy:9999/v1",
    ),
    (
        "host-with-scheme-is-used-as-is",
        {"backend": "vllm", "backend_config": {"host": "https://gpu.example:8443/v1", "port": 1}},
        "https://gpu.example:8443/v1",
    ),
    (
        "host-and-port",
        {"backend": "vllm", "backend_config": {"host": "gpu-box", "port": 1234}},
        "http://gpu-box:1234/v1",
    ),
    (
        "port-without-host-uses-localhost",
        {"backend": "ollama", "backend_config": {"port": 1234}},
        "http://localhost:1234/v1",
    ),
    (
        "empty-host-and-null-port-use-defaults",
        {"backend": "vllm", "backend_config": {"host": "", "port": None}},
        "http://localhost:24001/v1",
    ),
    ("vllm-default-port", {"backend": "vllm"}, "http://localhost:24001/v1"),
    (
        "ollama-default-port",
        {"backend": "ollama", "backend_config": {"host": "imageworks-ollama"}},
        "http://imageworks-ollama:11434/v1",
    ),
    ("lmdeploy-default-port", {"backend": "lmdeploy"}, "http://localhost:24001/v1"),
    ("triton-default-port", {"backend": "triton"}, "http://localhost:9000/v1"),
    ("other-backend-default-port", {"backend": "gguf"}, "http://localhost:8000/v1"),
]


@pytest.mark.parametrize(
    ("name", "fields", "endpoint"), ENDPOINT_CASES, ids=[c[0] for c in ENDPOINT_CASES]
)
def test_select_endpoint_rules(tmp_path, name, fields, endpoint):
    folder = one_layer_registry(tmp_path / "reg", [{"name": name, **fields}])
    selected = succeeded(run_cli("select", name, on(folder)))
    assert selected["endpoint"] == endpoint


def test_backend_default_ports_come_from_config(tmp_path):
    folder = one_layer_registry(
        tmp_path / "reg",
        [{"name": "t", "backend": "triton"}, {"name": "g", "backend": "gguf"}],
    )
    triton = succeeded(run_cli("select", "t", on(folder), "backends.triton.port=9100"))
    other = succeeded(run_cli("select", "g", on(folder), "backends.default.port=8100"))
    assert triton["endpoint"] == "http://localhost:9100/v1"
    assert other["endpoint"] == "http://localhost:8100/v1"


SERVED_ID_CASES = [
    ("none-string", {"served_model_id": "None"}, None),
    ("null-string", {"served_model_id": "null"}, None),
    ("empty-string", {"served_model_id": ""}, None),
    ("json-null", {"served_model_id": None}, None),
    ("missing", {}, None),
    ("real-id", {"served_model_id": "org/model:q4"}, "org/model:q4"),
]


@pytest.mark.parametrize(
    ("name", "fields", "served"), SERVED_ID_CASES, ids=[c[0] for c in SERVED_ID_CASES]
)
def test_select_internal_model_id_falls_back_to_the_logical_name(tmp_path, name, fields, served):
    logical = f"model-{name}_(Q4.K)"
    folder = one_layer_registry(tmp_path / "reg", [{"name": logical, "backend": "vllm", **fields}])
    selected = succeeded(run_cli("select", logical, on(folder)))
    assert selected["internal_model_id"] == (served or logical)


# --- metrics --------------------------------------------------------------------


def test_metrics_without_a_name_lists_name_locked_and_short_hash(real_registry):
    aggregates = discovered_aggregates(REAL_REGISTRY)
    rows = succeeded(run_cli("metrics", on(real_registry)))
    assert len(rows) == 16
    assert [row["name"] for row in rows] == sorted(aggregates)
    for row in rows:
        assert set(row) == {"name", "locked", "hash", "verify"}
        assert row["hash"] == aggregates[row["name"]][:12]
        assert row["verify"] in ("ok", "violated", "never")
        assert row["locked"] is False


def test_metrics_with_a_name_gives_the_full_aggregate(real_registry):
    name = "florence-2-large_(FP16)"
    metrics = succeeded(run_cli("metrics", name, on(real_registry)))
    verify = metrics.pop("verify")  # this host's last verify (issue 19)
    assert verify["status"] in ("ok", "never") and verify["host"]
    assert metrics == {
        "name": name,
        "aggregate_sha256": discovered_aggregates(REAL_REGISTRY)[name],
        "locked": False,
        "vision_probe": None,  # never probed
        "performance": {  # the rolling summary: no samples yet
            "rolling_samples": 0,
            "ttft_ms_avg": None,
            "throughput_toks_per_s_avg": None,
            "last_sample": None,
        },
    }
    assert re.fullmatch(r"[0-9a-f]{64}", metrics["aggregate_sha256"])


def test_metrics_with_a_name_reports_a_discovered_lock(demo_registry):
    metrics = succeeded(run_cli("metrics", DEMO_QWEN_VL, on(demo_registry)))
    assert metrics["locked"] is True
    assert metrics["aggregate_sha256"] == discovered_aggregates(demo_registry)[DEMO_QWEN_VL]


def test_metrics_for_an_unknown_model_exits_1(real_registry):
    result = run_cli("metrics", "no-such-model", on(real_registry))
    assert result.returncode == 1 and "no-such-model" in result.stderr


# --- explain --------------------------------------------------------------------


def explain_rows(folder: Path, name: str, *extra: str) -> dict[str, dict]:
    explained = succeeded(run_cli("explain", name, on(folder), *extra))
    assert explained["name"] == name
    return {row["field"]: row for row in explained["fields"]}


def test_explain_tags_every_field_with_its_layer(demo_registry):
    rows = explain_rows(demo_registry, DEMO_QWEN_VL)
    assert {row["source"] for row in rows.values()} == {"curated", "discovered", "default"}
    assert rows["display_name"]["source"] == "curated"
    # version_lock is dynamic (discovered wins); base_url is in neither layer
    assert rows["version_lock.locked"] == {
        "field": "version_lock.locked",
        "value": True,
        "source": "discovered",
    }
    assert rows["backend_config.base_url"]["source"] == "default"


def test_explain_shows_curated_winning_a_static_field_the_layers_disagree_on(demo_registry):
    curated = {e["name"]: e for e in read_json(demo_registry / CURATED)}[DEMO_QWEN_VL]
    discovered = {e["name"]: e for e in read_json(demo_registry / DISCOVERED)}[DEMO_QWEN_VL]
    expected = curated["backend_config"]["extra_args"]
    assert expected != discovered["backend_config"]["extra_args"]
    row = explain_rows(demo_registry, DEMO_QWEN_VL)["backend_config.extra_args"]
    assert row["value"] == expected and row["source"] == "curated"


def test_explain_shows_the_raw_text_of_interpolated_values(demo_registry):
    rows = explain_rows(demo_registry, DEMO_QWEN_VL)
    port = rows["backend_config.port"]
    assert port["raw"] == "${backends.vllm.port}" and port["value"] == 24001
    path = rows["backend_config.model_path"]
    assert path["raw"] == "${paths.models}/Qwen/Qwen2.5-VL-7B-Instruct-AWQ"
    assert path["value"].endswith("/Qwen/Qwen2.5-VL-7B-Instruct-AWQ")
    assert "${" not in path["value"]
    assert rows["download_path"]["source"] == "discovered" and "raw" in rows["download_path"]
    assert "raw" not in rows["display_name"]


def test_explain_shows_the_served_model_id_none_repair(demo_registry):
    row = explain_rows(demo_registry, DEMO_LLAMA_NONE_ID)["served_model_id"]
    assert row["value"] == "None"
    assert DEMO_LLAMA_NONE_ID in row["repaired"]
    selected = succeeded(run_cli("select", DEMO_LLAMA_NONE_ID, on(demo_registry)))
    assert selected["internal_model_id"] == DEMO_LLAMA_NONE_ID


def test_explain_has_no_repair_note_for_a_real_served_id(demo_registry):
    row = explain_rows(demo_registry, "qwen3_8b_(Q4_K_M)")["served_model_id"]
    assert row["value"] == "qwen3:8b" and "repaired" not in row


def test_explain_marks_a_set_field_as_override(demo_registry):
    text = f"{DEMO_QWEN_VL}.backend_config.port=9000"
    rows = explain_rows(demo_registry, DEMO_QWEN_VL, "--set", text)
    assert rows["backend_config.port"]["source"] == "override"
    assert rows["backend_config.port"]["value"] == 9000
    assert rows["backend_config.model_path"]["source"] == "curated"
    assert {row["source"] for row in rows.values()} <= SOURCES


def test_explain_raw_text_stays_while_a_config_override_changes_the_value(demo_registry):
    rows = explain_rows(demo_registry, DEMO_QWEN_VL, "backends.vllm.port=25555")
    assert rows["backend_config.port"]["value"] == 25555
    assert rows["backend_config.port"]["raw"] == "${backends.vllm.port}"


# --- Hydra overrides, environment, per-invocation --set -------------------------


def test_registry_dir_override_chooses_the_registry(real_registry, demo_registry):
    real = succeeded(run_cli("list", on(real_registry)))
    demo = succeeded(run_cli("list", on(demo_registry)))
    assert len(real) == 16
    assert {row["name"] for row in demo} == DEMO_NAMES


def test_vllm_port_override_moves_only_entries_that_interpolate_it(demo_registry):
    for name in DEMO_VLLM_INTERPOLATED:
        default = succeeded(run_cli("select", name, on(demo_registry)))
        moved = succeeded(run_cli("select", name, on(demo_registry), "backends.vllm.port=25555"))
        assert default["endpoint"] == "http://localhost:24001/v1"
        assert moved["endpoint"] == "http://localhost:25555/v1"
    ollama = succeeded(
        run_cli("select", "qwen3_8b_(Q4_K_M)", on(demo_registry), "backends.vllm.port=25555")
    )
    assert ollama["endpoint"].endswith(":11434/v1")


def test_env_registry_dir_is_used_when_no_override_is_given(tmp_path, demo_registry):
    work = empty_dir(tmp_path / "work")
    env = {"IMAGEWORKS_REGISTRY_DIR": str(demo_registry)}
    rows = succeeded(run_cli("list", cwd=work, env=env))
    assert {row["name"] for row in rows} == DEMO_NAMES


def test_registry_dir_override_beats_the_env_variable(tmp_path, real_registry, demo_registry):
    work = empty_dir(tmp_path / "work")
    env = {"IMAGEWORKS_REGISTRY_DIR": str(demo_registry)}
    assert len(succeeded(run_cli("list", on(real_registry), cwd=work, env=env))) == 16


def test_default_registry_dir_is_configs_under_the_working_directory(tmp_path):
    project = tmp_path / "project"
    copy_registry(REAL_REGISTRY, project / "configs")
    assert len(succeeded(run_cli("list", cwd=project))) == 16
    elsewhere = empty_dir(tmp_path / "elsewhere")
    result = run_cli("list", cwd=elsewhere)
    assert result.returncode == 1 and "configs" in result.stderr
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "port", "endpoint"),
    [
        ("qwen25vl_8.3b_(Q4_K_M)", 11434, "http://imageworks-ollama:{}/v1"),
        ("qwen2.5-vl-7b-instruct_(AWQ)", 24001, "http://localhost:{}/v1"),
    ],
)
def test_set_override_applies_to_names_with_dots_and_parentheses_and_is_not_saved(
    real_registry, name, port, endpoint
):
    before = folder_digest(real_registry)
    overridden = succeeded(
        run_cli("select", name, "--set", f"{name}.backend_config.port=9000", on(real_registry))
    )
    assert overridden["endpoint"] == endpoint.format(9000)
    assert folder_digest(real_registry) == before
    plain = succeeded(run_cli("select", name, on(real_registry)))
    assert plain["endpoint"] == endpoint.format(port)


def test_set_override_never_reaches_the_layers_or_the_snapshot(demo_registry):
    assert not (demo_registry / SNAPSHOT).exists()
    layers = folder_digest(demo_registry)
    text = f"{DEMO_QWEN_VL}.backend_config.port=9000"
    selected = succeeded(run_cli("select", DEMO_QWEN_VL, "--set", text, on(demo_registry)))
    assert selected["endpoint"] == "http://localhost:9000/v1"
    after = folder_digest(demo_registry)
    derived = (SNAPSHOT, f".{SNAPSHOT}.names.json")  # the snapshot and its record
    assert {k: v for k, v in after.items() if k not in derived} == layers
    # a successful run may refresh the snapshot, but only with persisted values
    snapshot = {e["name"]: e for e in json.loads((demo_registry / SNAPSHOT).read_text())}
    assert snapshot[DEMO_QWEN_VL]["backend_config"]["port"] == 24001


def test_set_override_matches_the_longest_entry_name(tmp_path):
    folder = one_layer_registry(
        tmp_path / "reg",
        [
            {"name": "m", "backend": "vllm", "backend_config": {"port": 1}},
            {"name": "m.v2", "backend": "vllm", "backend_config": {"port": 2}},
        ],
    )
    override = ("--set", "m.v2.backend_config.port=7002", on(folder))
    assert succeeded(run_cli("select", "m.v2", *override))["endpoint"].endswith(":7002/v1")
    assert succeeded(run_cli("select", "m", *override))["endpoint"].endswith(":1/v1")


def test_set_value_is_json_when_it_parses_else_text(real_registry):
    name = "qwen3_8b_(Q4_K_M)"
    rows = succeeded(
        run_cli(
            "list",
            "--set",
            f'{name}.roles=["caption","chat"]',
            "--set",
            f"{name}.backend_config.host=gpu-box",
            "--role",
            "caption",
            on(real_registry),
        )
    )
    assert name in [row["name"] for row in rows]
    selected = succeeded(
        run_cli("select", name, "--set", f"{name}.backend_config.host=gpu-box", on(real_registry))
    )
    assert selected["endpoint"] == "http://gpu-box:11434/v1"


def test_cfg_job_prints_the_yaml_config_without_running(tmp_path, demo_registry):
    before = folder_digest(demo_registry)
    result = run_cli("list", "--cfg", "job", on(demo_registry), "backends.vllm.port=25555")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert config["registry"]["dir"] == str(demo_registry)
    assert config["backends"]["vllm"]["port"] == 25555
    assert "hydra" not in config
    # not run: the demo load would have written the missing snapshot
    assert folder_digest(demo_registry) == before


def test_cfg_job_succeeds_even_when_the_registry_folder_is_missing(tmp_path):
    absent = tmp_path / "absent"
    result = run_cli("select", "anything", "--cfg", "job", on(absent))
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["registry"]["dir"] == str(absent)
    assert not absent.exists()


def test_multirun_sweep_runs_metrics_once_per_name(real_registry):
    names = ["florence-2-large_(FP16)", "qwen3_8b_(Q4_K_M)"]
    sweep = "name=" + ",".join(f"'{n}'" for n in names)
    result = run_cli("metrics", "-m", sweep, on(real_registry))
    assert result.returncode == 0, result.stderr
    documents = json_stream(result.stdout)
    assert [d["name"] for d in documents] == names
    aggregates = discovered_aggregates(REAL_REGISTRY)
    assert [d["aggregate_sha256"] for d in documents] == [aggregates[n] for n in names]


def test_multirun_sweep_over_names_works_for_commands_that_require_a_name(demo_registry):
    # DESIGN section 3: `verify -m name=a,b,c`; the name comes from the sweep, not argv
    names = [DEMO_QWEN_VL, "qwen3_8b_(Q4_K_M)"]
    sweep = "name=" + ",".join(f"'{n}'" for n in names)
    for command in ("select", "explain"):
        result = run_cli(command, "-m", sweep, on(demo_registry))
        assert result.returncode == 0, (command, result.stderr)
        documents = json_stream(result.stdout)
        keys = [d.get("logical_name", d.get("name")) for d in documents]
        assert keys == names, command


def test_multirun_sweep_over_a_config_value(demo_registry):
    result = run_cli(
        "select", DEMO_QWEN_VL, "-m", "backends.vllm.port=7001,7002", on(demo_registry)
    )
    assert result.returncode == 0, result.stderr
    endpoints = [d["endpoint"] for d in json_stream(result.stdout)]
    assert endpoints == ["http://localhost:7001/v1", "http://localhost:7002/v1"]


def test_multirun_sweep_over_registry_dirs(real_registry, demo_registry):
    result = run_cli("list", "-m", f"registry.dir={real_registry},{demo_registry}")
    assert result.returncode == 0, result.stderr
    assert [len(d) for d in json_stream(result.stdout)] == [16, len(DEMO_NAMES)]


HYDRA_RUNS = {
    "plain-list": ("list",),
    "config-override": ("select", DEMO_QWEN_VL, "backends.vllm.port=25555"),
    "cfg-job": ("list", "--cfg", "job"),
    "cfg-all": ("list", "--cfg", "all"),
    "multirun": ("metrics", "-m", f"name='{DEMO_QWEN_VL}','qwen3_8b_(Q4_K_M)'"),
    "multirun-select": ("select", DEMO_QWEN_VL, "-m", "backends.vllm.port=1,2"),
}


@pytest.mark.parametrize("words", list(HYDRA_RUNS.values()), ids=list(HYDRA_RUNS))
def test_runs_leave_no_outputs_or_logs_in_the_working_directory(tmp_path, demo_registry, words):
    work = empty_dir(tmp_path / "work")
    result = run_cli(*words, on(demo_registry), cwd=work)
    assert result.returncode == 0, result.stderr
    assert list(work.iterdir()) == []
    litter = [
        p
        for p in tmp_path.rglob("*")
        if p.name in {"outputs", "multirun", "multirun.yaml", ".hydra"} or p.suffix == ".log"
    ]
    assert litter == []


# --- help -----------------------------------------------------------------------


def listed_commands() -> list[str]:
    result = run_cli("--help")
    assert result.returncode == 0
    match = re.search(r"\{([a-z,-]+)\}", result.stdout)
    if match:
        return match.group(1).split(",")
    section = result.stdout.split("COMMAND", 2)[-1]
    return re.findall(r"^ {4}([a-z][a-z-]*)\s", section, re.MULTILINE)


def assert_mentions_override_syntax(text: str) -> None:
    assert "--set" in text
    assert "KEY=VALUE" in text
    assert "NAME.FIELD=VALUE" in text


def test_top_level_help_lists_the_commands_and_the_override_syntax():
    result = run_cli("--help")
    assert result.returncode == 0
    assert_mentions_override_syntax(result.stdout)
    assert "IMAGEWORKS_REGISTRY_DIR" in result.stdout
    assert set(ISSUE_COMMANDS) <= set(listed_commands())


@pytest.mark.parametrize("command", ISSUE_COMMANDS)
def test_command_help_describes_the_command_and_the_override_syntax(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: imageworks-loader {command}")
    assert_mentions_override_syntax(result.stdout)
    assert "--cfg" in result.stdout and "--multirun" in result.stdout


def test_every_listed_command_has_help_with_the_override_syntax():
    commands = listed_commands()
    assert len(commands) >= len(ISSUE_COMMANDS)
    for command in commands:
        result = run_cli(command, "--help")
        assert result.returncode == 0, command
        assert_mentions_override_syntax(result.stdout)


def test_select_help_documents_require_vision():
    assert "--require-vision" in run_cli("select", "--help").stdout


# --- stdout is JSON only; diagnostics on stderr ---------------------------------


@pytest.mark.parametrize(
    "words",
    [
        ("list",),
        ("list", "--role", "caption"),
        ("select", DEMO_QWEN_VL),
        ("metrics",),
        ("metrics", DEMO_QWEN_VL),
        ("explain", DEMO_LLAMA_NONE_ID),
    ],
    ids=lambda words: "-".join(w.strip("-") for w in words),
)
def test_stdout_holds_only_json_and_stderr_stays_empty_on_success(demo_registry, words):
    result = run_cli(*words, on(demo_registry))
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)
    assert result.stderr == ""


def test_a_failure_prints_nothing_on_stdout_and_one_line_on_stderr(real_registry):
    result = run_cli("explain", "no-such-model", on(real_registry))
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "no-such-model" in result.stderr


@pytest.mark.parametrize("sweep", [(), ("-m", "backends.vllm.port=1,2")], ids=["plain", "multirun"])
def test_a_reader_that_stops_early_gets_no_traceback_on_stderr(tmp_path, sweep):
    """`imageworks-loader list | head -c 1` must stay quiet on stderr."""
    # ~300 KB of output: more than a pipe holds, so the write hits the closed pipe
    entries = [{"name": f"model-{i:04d}_(Q4)", "roles": ["caption"]} for i in range(2000)]
    folder = one_layer_registry(tmp_path / "big", entries)
    proc = subprocess.Popen(
        [str(CLI), "list", *sweep, on(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdout.read(1) == b"["
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in stderr, stderr


def test_a_name_given_as_a_config_override_works_like_the_positional(demo_registry):
    name = "qwen3_8b_(Q4_K_M)"
    positional = run_cli("select", name, f"registry.dir={demo_registry}")
    override = run_cli("select", f"name='{name}'", f"registry.dir={demo_registry}")
    assert positional.returncode == 0 and override.returncode == 0, override.stderr
    assert override.json() == positional.json()
