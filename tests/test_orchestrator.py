"""The single-port vLLM orchestrator, end to end: real CLI processes, the
stand-in vLLM started through the configured launch command, real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import DISCOVERED, read_json
from orchestrator_support import (
    FLORENCE,
    OLLAMA_ENTRY,
    QWEN,
    group_alive,
    orchestra_world,
    start_ticks,
    wait_for,
)


@pytest.fixture
def orchestra(tmp_path, monkeypatch):
    yield from orchestra_world(tmp_path, monkeypatch)


def served_ids(port: int) -> list[str]:
    response = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)
    return [model["id"] for model in response.json()["data"]]


def activated(orchestra, name: str, **kwargs) -> dict:
    result = orchestra.cli("activate-model", name, **kwargs)
    assert result.returncode == 0, result.stderr
    return result.json()


def test_activate_starts_the_model_and_again_restarts_nothing(orchestra):
    state = activated(orchestra, FLORENCE)
    assert state == orchestra.state()
    assert (state["logical_name"], state["served_model_id"]) == (FLORENCE, FLORENCE)
    assert state["port"] == orchestra.port
    assert isinstance(state["started_at"], float) and state["started_at"] <= time.time()
    assert state["process_start_ticks"] == start_ticks(state["pid"])
    assert served_ids(orchestra.port) == [FLORENCE]
    reply = httpx.post(
        f"http://127.0.0.1:{orchestra.port}/v1/chat/completions",
        json={"model": FLORENCE, "messages": [{"role": "user", "content": "hi"}]},
        timeout=5,
    )
    assert reply.json()["choices"][0]["message"]["content"]
    # the launch: the configured command, vLLM's defaults, then the entry's extra_args
    assert state["argv"][2:] == [
        "--model", str(orchestra.models / "microsoft" / "Florence-2-large"),
        "--host", "0.0.0.0", "--port", str(orchestra.port),
        "--served-model-name", FLORENCE,
        "--gpu-memory-utilization", "0.75",
        "--trust-remote-code", "--dtype", "float16",
    ]  # fmt: skip
    assert "vllm stand-in pid" in Path(state["log_path"]).read_text()

    again = orchestra.cli("activate-model", FLORENCE)
    assert again.returncode == 0, again.stderr
    assert again.json() == state  # the same pid: nothing restarted
    assert "already active" in again.stderr
    current = orchestra.cli("current-model")
    assert current.returncode == 0 and current.json() == state

    # performance.activation recorded in the discovered layer
    recorded = {e["name"]: e for e in read_json(orchestra.registry / DISCOVERED)}
    activation = recorded[FLORENCE]["performance"]["activation"]
    assert activation["max_model_len"] == 2048  # read from /v1/models
    assert 0 < activation["startup_s"] < 60
    assert activation["at"].endswith("+00:00")
    [host] = recorded[FLORENCE]["hosts"].values()  # this host's own record (issue 19)
    assert host["activation"] == activation

    # a person sees it served now (issue 19)
    table = orchestra.cli("list", "--format", "table")
    assert table.returncode == 0, table.stderr
    served = [line.split()[0] for line in table.stdout.splitlines()[1:] if line.endswith("yes")]
    assert served == [FLORENCE]
    shown = orchestra.cli("current-model", "--format", "table").stdout
    assert ["logical_name", FLORENCE] in [line.split() for line in shown.splitlines()]


def test_an_active_model_that_stopped_answering_is_restarted(orchestra):
    first = activated(orchestra, FLORENCE)
    os.kill(first["pid"], signal.SIGUSR1)  # the stand-in's health now answers 503
    again = orchestra.cli("activate-model", FLORENCE)
    assert again.returncode == 0, again.stderr
    assert "not healthy" in again.stderr and "restarting" in again.stderr
    assert again.json()["pid"] != first["pid"]
    assert group_alive(first["pid"]) == []


def test_a_switch_stops_the_whole_first_process_group(orchestra):
    first = activated(orchestra, FLORENCE)
    first_group = group_alive(first["pid"])
    assert len(first_group) == 2  # the server and its worker, as vLLM has
    second = activated(orchestra, QWEN)
    assert second["pid"] != first["pid"]
    assert group_alive(first["pid"]) == []
    assert served_ids(orchestra.port) == [QWEN]
    argv = second["argv"]
    template = orchestra.models / "Qwen" / "Qwen2.5-VL-7B-Instruct-AWQ" / "chat_template.json"
    assert argv[argv.index("--chat-template") + 1] == str(template)
    # the entry's own --max-model-len comes last and is not overridden by config
    assert argv[-4:] == [
        "--max-model-len",
        "8192",
        "--limit-mm-per-prompt",
        '{"image":1,"video":0}',
    ]
    assert orchestra.state()["logical_name"] == QWEN
    recorded = {e["name"]: e for e in read_json(orchestra.registry / DISCOVERED)}
    assert recorded[QWEN]["performance"]["activation"]["max_model_len"] == 8192


def test_stop_ends_the_server_and_again_is_a_no_op(orchestra):
    state = activated(orchestra, FLORENCE)
    stopped = orchestra.cli("activate-model", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.json() == {"stopped": state}
    assert group_alive(state["pid"]) == []
    assert not orchestra.state_file.exists()
    assert orchestra.cli("current-model").stdout.strip() == "null"
    for how in ("--stop", "none"):
        again = orchestra.cli("activate-model", how)
        assert again.returncode == 0, again.stderr
        assert again.json() == {"stopped": None}


def test_the_name_none_stops_the_server(orchestra):
    state = activated(orchestra, QWEN)
    stopped = orchestra.cli("activate-model", "none")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.json() == {"stopped": state}
    assert group_alive(state["pid"]) == []


def test_a_server_that_ignores_sigterm_is_killed_after_the_stop_timeout(orchestra):
    env = {"VLLM_STANDIN_MODE": "ignore-sigterm"}
    state = activated(orchestra, FLORENCE, env=env)
    started = time.monotonic()
    stopped = orchestra.cli("activate-model", "--stop", "orchestrator.stop_timeout_s=1")
    assert stopped.returncode == 0, stopped.stderr
    assert time.monotonic() - started >= 1
    assert "ignored SIGTERM" in stopped.stderr
    assert group_alive(state["pid"]) == []


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("crash", "exited with code 1 during start"), ("never-healthy", "not healthy within 2s")],
)
def test_a_failed_start_leaves_no_process_and_no_state(orchestra, mode, expected):
    result = orchestra.cli(
        "activate-model",
        FLORENCE,
        "orchestrator.start_timeout_s=2",
        env={"VLLM_STANDIN_MODE": mode},
    )
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert f"mode {mode}" in result.stderr  # the last lines of the server's log
    if mode == "crash":
        assert "CUDA out of memory" in result.stderr
    assert result.stdout == ""
    assert orchestra.state() is None
    assert orchestra.live() == []  # the crashed server's worker too
    recorded = {e["name"]: e for e in read_json(orchestra.registry / DISCOVERED)}
    assert "activation" not in (recorded[FLORENCE].get("performance") or {})


def test_a_stale_state_with_a_dead_pid_is_cleared(orchestra):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    ticks = start_ticks(gone.pid)
    gone.wait()
    orchestra.write_state(pid=gone.pid, process_start_ticks=ticks)
    result = orchestra.cli("current-model")
    assert result.returncode == 0
    assert result.stdout.strip() == "null"
    assert "no longer running" in result.stderr and "cleared" in result.stderr
    assert orchestra.state() is None
    # and an activation over such a state simply starts
    orchestra.write_state(pid=gone.pid, process_start_ticks=ticks)
    assert activated(orchestra, FLORENCE)["pid"] != gone.pid


@pytest.mark.parametrize("command", [("current-model",), ("activate-model", "--stop")])
def test_a_reused_pid_is_never_signalled(orchestra, command):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        # the state's pid now belongs to an unrelated program started later
        orchestra.write_state(pid=bystander.pid, process_start_ticks=start_ticks(bystander.pid) - 1)
        result = orchestra.cli(*command)
        assert result.returncode == 0, result.stderr
        assert "belongs to another program" in result.stderr
        assert orchestra.state() is None
        assert result.json() in (None, {"stopped": None})
        time.sleep(0.2)
        assert bystander.poll() is None  # still running
    finally:
        bystander.kill()
        bystander.wait()


def test_an_activation_over_a_reused_pid_starts_without_signalling_it(orchestra):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        orchestra.write_state(pid=bystander.pid, process_start_ticks=start_ticks(bystander.pid) + 7)
        state = activated(orchestra, QWEN)
        assert state["pid"] != bystander.pid
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_leftovers_of_a_dead_server_are_reported_then_stopped(orchestra):
    state = activated(orchestra, FLORENCE)
    os.kill(state["pid"], signal.SIGKILL)  # the server dies; its worker lives on
    assert wait_for(
        lambda: group_alive(state["pid"]) and state["pid"] not in group_alive(state["pid"])
    )
    current = orchestra.cli("current-model")
    assert current.stdout.strip() == "null"
    assert "--stop" in current.stderr
    stopped = orchestra.cli("activate-model", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert group_alive(state["pid"]) == []
    assert orchestra.state() is None


def test_a_state_written_by_the_chat_proxy_is_understood(orchestra):
    state = activated(orchestra, FLORENCE)
    legacy = {k: state[k] for k in ("logical_name", "served_model_id", "port", "pid", "started_at")}
    orchestra.state_file.write_text(json.dumps(legacy))
    assert orchestra.cli("current-model").json() == {**state, **_ours_unknown()}
    stopped = orchestra.cli("activate-model", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert group_alive(state["pid"]) == []


def _ours_unknown() -> dict:
    unknown = {"process_start_ticks": None, "boot_id": None, "host": "", "argv": []}
    return {**unknown, "log_path": "", "instance": None, "cgroup": None, "cgroup_why_not": None}


def test_a_busy_port_is_refused_and_its_holder_left_alone(orchestra):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, sys, time\n"
            "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
            "print('listening', flush=True); time.sleep(120)",
            str(orchestra.port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "listening"
        result = orchestra.cli("activate-model", FLORENCE)
        assert result.returncode == 1
        assert f"port {orchestra.port} is in use" in result.stderr
        assert orchestra.state() is None
        assert holder.poll() is None
        assert [pid for pid in orchestra.live() if pid != holder.pid] == []
    finally:
        holder.kill()
        holder.wait()


def test_two_racing_activations_end_with_one_consistent_server(orchestra):
    racers = [orchestra.popen_cli("activate-model", name) for name in (FLORENCE, QWEN)]
    outputs = [racer.communicate(timeout=120) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outputs
    state = orchestra.state()
    reported = [json.loads(out) for out, _ in outputs]
    assert state in reported  # the one that ran last holds the port
    assert served_ids(orchestra.port) == [state["served_model_id"]]
    # exactly one server group is alive, and it is the recorded one
    assert sorted(orchestra.live_servers()) == sorted(group_alive(state["pid"]))
    assert len(orchestra.live_servers()) == 2


def test_racing_activations_of_one_model_start_it_once(orchestra):
    racers = [orchestra.popen_cli("activate-model", FLORENCE) for _ in range(3)]
    outputs = [racer.communicate(timeout=120) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0, 0], outputs
    pids = {json.loads(out)["pid"] for out, _ in outputs}
    assert pids == {orchestra.state()["pid"]}
    assert sum("already active" in err for _, err in outputs) == 2


def test_a_second_caller_gives_up_after_the_lock_timeout_naming_the_holder(orchestra):
    orchestra.state_file.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom loader.file_locks import file_lock\n"
            "with file_lock(sys.argv[1], 5):\n    print('held', flush=True)\n    time.sleep(120)",
            str(orchestra.state_file.with_suffix(".lock")),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = orchestra.cli("activate-model", FLORENCE, "orchestrator.lock_timeout_s=0.5")
        assert result.returncode == 1
        assert f"held by pid {holder.pid}" in result.stderr
        assert "lock_timeout_s" in result.stderr
        assert orchestra.state() is None
    finally:
        holder.kill()
        holder.wait()


REFUSALS = [
    (("activate-model", FLORENCE, "orchestrator.enabled=false"), "orchestration is disabled"),
    (("activate-model", "--stop", "orchestrator.enabled=false"), "orchestration is disabled"),
    (("activate-model", OLLAMA_ENTRY), "has backend 'ollama'"),
    (("activate-model", "no-such-model"), "unknown model 'no-such-model'"),
    (("activate-model",), "give a model NAME, or --stop"),
]


def test_refusals_exit_1_and_kill_nothing(orchestra):
    state = activated(orchestra, FLORENCE)
    for args, message in REFUSALS:
        result = orchestra.cli(*args)
        assert result.returncode == 1, args
        assert message in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert orchestra.state() == state
        assert len(group_alive(state["pid"])) == 2


def test_the_hydra_app_reaches_the_same_operations(orchestra):
    from loader.frontdoors.apps import main

    state = activated(orchestra, FLORENCE)
    proc = subprocess.run(
        [sys.executable, "-m", "loader.apps", "current-model", *orchestra.overrides],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == state
    assert main(["activate-model", "stop=true", *orchestra.overrides]) == 0
    assert orchestra.state() is None


def test_the_python_api_for_long_running_callers(orchestra):
    from loader.orchestrator import activate, current, deactivate
    from loader.registry.core import Registry

    registry = Registry(orchestra.config())
    assert current(registry=registry) is None
    state = activate(QWEN, registry=registry)
    assert current(registry=registry) == state == orchestra.state()
    assert registry.get(QWEN).performance.activation["max_model_len"] == 8192
    assert activate(QWEN, registry=registry)["pid"] == state["pid"]
    assert deactivate(registry=registry) == state
    assert group_alive(state["pid"]) == []
    assert not Path(f"/proc/{state['pid']}").exists()  # reaped, not left a zombie
    assert deactivate(registry=registry) is None
