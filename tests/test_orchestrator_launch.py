"""The vLLM launch command and the orchestrator's settings, from real config."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loader.config import load_config
from loader.errors import OrchestrationError
from loader.orchestrator import Settings
from loader.orchestrator.launch import build_launch, log_path_for
from loader.orchestrator.state import State, read_state, write_state
from loader.registry.schema import RegistryEntry


def settings(*overrides: str) -> Settings:
    return Settings.from_config(load_config(list(overrides)))


def entry(tmp_path, **fields) -> RegistryEntry:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    data = {"name": "m_(Q4)", "backend": "vllm", "backend_config": {"model_path": str(model)}}
    data.update(fields)
    return RegistryEntry.model_validate(data)


def test_the_default_command_is_the_real_vllm_launch(tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGEWORKS_VLLM_PYTHON", raising=False)
    chosen = settings()
    assert (chosen.port, chosen.start_timeout_s, chosen.stop_timeout_s) == (24001, 180, 30)
    assert chosen.lock_timeout_s > chosen.start_timeout_s + chosen.stop_timeout_s
    assert chosen.restart_backoff_s == 2
    assert chosen.health_paths == ("/health", "/v1/health")
    plan = build_launch(entry(tmp_path, served_model_id="served"), chosen)
    assert plan.argv == [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(tmp_path / "model"), "--host", "0.0.0.0", "--port", "24001",
        "--served-model-name", "served", "--gpu-memory-utilization", "0.75",
    ]  # fmt: skip
    assert plan.warnings == []


def test_python_comes_from_config_or_its_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEWORKS_VLLM_PYTHON", "/opt/vllm/.venv/bin/python")
    assert build_launch(entry(tmp_path), settings()).argv[0] == "/opt/vllm/.venv/bin/python"
    chosen = settings("orchestrator.python=/srv/py")
    assert build_launch(entry(tmp_path), chosen).argv[0] == "/srv/py"


def test_the_state_file_comes_from_config_or_its_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGEWORKS_VLLM_STATE_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert settings().state_file == tmp_path / "_staging" / "active_vllm.json"
    assert settings().lock_file == tmp_path / "_staging" / "active_vllm.lock"
    monkeypatch.setenv("IMAGEWORKS_VLLM_STATE_FILE", str(tmp_path / "s.json"))
    assert settings().state_file == tmp_path / "s.json"
    assert settings().log_dir == tmp_path / "logs"


def test_extra_args_win_over_configured_defaults_and_come_last(tmp_path):
    chosen = settings("orchestrator.max_model_len=4096")
    plain = build_launch(entry(tmp_path), chosen).argv
    assert plain[-4:] == ["--gpu-memory-utilization", "0.75", "--max-model-len", "4096"]
    extra = ["--gpu-memory-utilization=0.9", "--max-model-len", "8192", "--enforce-eager"]
    argv = build_launch(
        entry(tmp_path, backend_config={"extra_args": extra, "model_path": "org/hub-id"}), chosen
    ).argv
    assert argv[argv.index("--model") + 1] == "org/hub-id"  # not on disk: a hub id for vLLM
    assert argv[-4:] == extra
    assert argv.count("--max-model-len") == 1 and "--gpu-memory-utilization" not in argv


def test_a_repeated_flag_gets_one_warning_naming_it(tmp_path):
    extra = ["--max-num-seqs", "1", "--max-num-seqs", "2", "--max-num-seqs=3", "--dtype", "auto"]
    plan = build_launch(
        entry(tmp_path, backend_config={"extra_args": extra, "model_path": "x"}), settings()
    )
    assert len(plan.warnings) == 1
    assert "--max-num-seqs" in plan.warnings[0] and "m_(Q4)" in plan.warnings[0]


def test_the_chat_template_is_passed_unless_extra_args_set_one(tmp_path):
    template = tmp_path / "t.jinja"
    template.write_text("{{ messages }}")
    plan = build_launch(entry(tmp_path, chat_template={"path": str(template)}), settings())
    assert plan.argv[plan.argv.index("--chat-template") + 1] == str(template)
    own = ["--chat-template", "/elsewhere.jinja"]
    plan = build_launch(
        entry(
            tmp_path,
            chat_template={"path": str(tmp_path / "missing.jinja")},
            backend_config={"model_path": "x", "extra_args": own},
        ),
        settings(),
    )
    assert plan.argv.count("--chat-template") == 1 and plan.argv[-2:] == own


def test_an_absent_chat_template_is_a_warning_not_a_failure(tmp_path):
    plan = build_launch(entry(tmp_path, chat_template={"path": "/no/such.jinja"}), settings())
    assert "--chat-template" not in plan.argv
    assert len(plan.warnings) == 1
    assert "chat_template.path: file not found: /no/such.jinja" in plan.warnings[0]


@pytest.mark.parametrize(
    ("fields", "overrides", "message"),
    [
        (
            {"backend_config": {"model_path": "x", "extra_args": ["--port", "9"]}},
            (),
            "--port is set",
        ),
        ({"backend_config": {"model_path": None}}, (), "backend_config.model_path: not set"),
        ({}, ("orchestrator.command=['{python}','{nope}']",), "unknown placeholder {nope}"),
    ],
)
def test_bad_launch_input_is_refused_in_one_line(tmp_path, fields, overrides, message):
    with pytest.raises(OrchestrationError, match=message.replace("{", r"\{")) as caught:
        build_launch(entry(tmp_path, **fields), settings(*overrides))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("orchestrator.port=abc", "orchestrator.port: not an integer"),
        ("orchestrator.start_timeout_s=-1", "orchestrator.start_timeout_s: negative"),
        ("orchestrator.command=x", "orchestrator.command: expected a list"),
        ("orchestrator.log_max_bytes=10", "orchestrator.log_max_bytes: must be at least 4096"),
        ("orchestrator.request_timeout_s=0", "orchestrator.request_timeout_s: must be at least"),
        ("orchestrator.log_keep=x", "orchestrator.log_keep: not an integer"),
    ],
)
def test_bad_settings_name_the_key(override, message):
    with pytest.raises(OrchestrationError, match=message):
        settings(override)


def test_log_files_are_named_for_the_model(tmp_path):
    assert log_path_for("qwen2.5-vl_(AWQ)", tmp_path).name == "qwen2.5-vl_(AWQ).log"
    assert log_path_for("../a/b c", tmp_path).parent == tmp_path


def test_the_state_file_keeps_the_chat_proxys_keys_and_rules(tmp_path, caplog):
    path = tmp_path / "active_vllm.json"
    state = State("m", "served", 24001, 1234, 1.5, 99, "boot", "0.0.0.0", ["a"], "/log")
    write_state(path, state)
    assert read_state(path) == state
    assert list(state.to_json())[:5] == [
        "logical_name", "served_model_id", "port", "pid", "started_at",
    ]  # fmt: skip
    for absent in (
        '{"logical_name": "", "served_model_id": "s", "port": 1, "pid": 2}',
        '{"logical_name": "m", "served_model_id": "s", "port": 1, "pid": 0}',
    ):
        path.write_text(absent)
        assert read_state(path) is None
        assert "not a usable state" in caplog.text  # a warning record (loader.logs)
        caplog.clear()
    # what is not a state at all is an error naming the file (and the field)
    for bad, message in (
        ("not json", "invalid JSON at line 1 column 1"),
        ("[1]", "expected a JSON object, found list"),
        ('{"logical_name": "m", "served_model_id": "s", "port": 1, "pid": true}', "pid: not an"),
        ('{"logical_name": 7, "served_model_id": "s", "port": 1, "pid": 2}', "logical_name"),
    ):
        path.write_text(bad)
        with pytest.raises(OrchestrationError, match=message) as caught:
            read_state(path)
        assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_the_log_writer_cuts_at_line_ends_and_keeps_the_last_pieces(tmp_path):
    from loader.orchestrator import logwriter

    log = tmp_path / "m.log"
    log.write_bytes(b"# header\n")
    lines = b"".join(b"line %04d\n" % i for i in range(100))  # 10 bytes each
    long_line = b"x" * 250 + b"\n"  # longer than a piece: cut at the size
    proc = subprocess.run(
        [sys.executable, logwriter.__file__, str(log), "100", "2"],
        input=lines + long_line + b"last\n",
        timeout=30,
    )
    assert proc.returncode == 0
    pieces = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(pieces) == ["m.log", "m.log.1", "m.log.2"]
    assert all(len(data) <= 100 for data in pieces.values())
    assert pieces["m.log"].endswith(b"last\n")
    # nothing lost in the pieces kept, and every cut but the long line's at a line's end
    assert (pieces["m.log.2"] + pieces["m.log.1"] + pieces["m.log"]).endswith(
        b"x" * 200 + b"\n" + b"last\n"
    )


def test_rotation_keeps_log_keep_pieces(tmp_path):
    from loader.orchestrator.logwriter import rotate

    log = tmp_path / "m.log"
    for start in range(4):
        log.write_text(f"start {start}\n")
        rotate(log, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.log.1", "m.log.2"]
    assert (tmp_path / "m.log.1").read_text() == "start 3\n"
    assert (tmp_path / "m.log.2").read_text() == "start 2\n"
