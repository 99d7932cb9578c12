"""Servers that try to outlive a stop, and stops that must not reach too far
(issues 17.3 and 18.6): a server the chat proxy started, launchers that leave
their process group or daemonize, signals during a start, a dead pid whose
number lives on as someone else's session, a health check that trickles, a
server that floods its log. Real CLI processes and real servers throughout."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CLI
from orchestrator_support import (
    CHAT_PROXY,
    FLORENCE,
    QWEN,
    fake_command,
    orchestra_world,
    start_ticks,
    wait_for,
)
from process_support import command_line


@pytest.fixture
def orchestra(tmp_path, monkeypatch):
    yield from orchestra_world(tmp_path, monkeypatch)


def port_answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def running(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] not in "ZX"


def activated(orchestra, name: str, *args: str, **kwargs) -> dict:
    result = orchestra.cli("activate-model", name, *args, **kwargs)
    assert result.returncode == 0, result.stderr
    return result.json()


def nothing_left(orchestra, but: tuple[int, ...] = ()) -> bool:
    """No process of the test lives on (the log writer may take a moment to
    read its last bytes once the server has gone)."""
    return wait_for(lambda: [p for p in orchestra.live() if p not in but] == [], 10)


def sleeper(*words: str) -> subprocess.Popen[str]:
    """A bystander in its own session: ``python -c 'sleep' WORDS…``."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", *words],
        start_new_session=True,
    )


def end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# --- 17.3: a server the chat proxy started ------------------------------------


@pytest.fixture
def proxy_server(orchestra):
    """A server started as the chat proxy starts it: a plain child of the
    proxy (not a group leader), its worker its own child; the state in the
    proxy's five-key format."""
    model = orchestra.models / "microsoft" / "Florence-2-large"
    proxy = subprocess.Popen(
        [sys.executable, str(CHAT_PROXY), str(orchestra.state_file), str(orchestra.port)]
        + [FLORENCE, str(model)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the proxy leads its own group, as a service would
    )
    try:
        words = proxy.stdout.readline().split()
        assert words[:1] == ["ready"], words
        server = int(words[1])
        yield proxy, server
    finally:
        end(proxy)


@pytest.mark.parametrize("how", [("--stop",), (QWEN,)], ids=["stop", "switch"])
def test_a_server_the_chat_proxy_started_is_stopped_with_its_workers(orchestra, proxy_server, how):
    proxy, server = proxy_server
    assert os.getpgid(server) != server  # not a group leader: a group stop misses it
    assert sorted(orchestra.live()) != sorted([proxy.pid, server])  # its worker lives too
    assert set(orchestra.state()) == {
        "logical_name", "served_model_id", "port", "pid", "started_at",
    }  # fmt: skip
    result = orchestra.cli("activate-model", *how)
    assert result.returncode == 0, result.stderr
    if how == ("--stop",):
        assert result.json()["stopped"]["pid"] == server
        assert not port_answers(orchestra.port)
        assert orchestra.state() is None
        assert nothing_left(orchestra, but=(proxy.pid,))
    else:
        assert result.json()["logical_name"] == QWEN
        assert orchestra.state()["logical_name"] == QWEN
        assert not running(server)  # gone (a zombie of the proxy, which never reaps it)
    assert proxy.poll() is None  # the proxy itself was never signalled


def test_a_proxy_state_whose_pid_started_later_is_never_signalled(orchestra):
    # Its command line even serves the port; but it started after the state was written.
    bystander = sleeper("--port", str(orchestra.port))
    try:
        assert wait_for(lambda: "--port" in command_line(bystander.pid))
        orchestra.write_state(pid=bystander.pid, started_at=time.time() - 3600)
        result = orchestra.cli("activate-model", "--stop")
        assert result.returncode == 0, result.stderr
        assert result.json() == {"stopped": None}
        assert "belongs to another program" in result.stderr
        time.sleep(0.2)
        assert bystander.poll() is None
    finally:
        end(bystander)


def test_after_a_stop_a_port_still_held_names_its_holder_and_exits_1(orchestra):
    # The state names a process of the proxy's; the port is held by someone else.
    named = sleeper("--port", str(orchestra.port))
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
        start_new_session=True,
    )
    try:
        assert holder.stdout.readline().strip() == "listening"
        assert wait_for(lambda: "--port" in command_line(named.pid))
        orchestra.write_state(pid=named.pid, started_at=time.time())
        result = orchestra.cli("activate-model", "--stop")
        assert result.returncode == 1
        assert f"port {orchestra.port} is still held by pid {holder.pid}" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 2, result.stderr  # stopping …; error
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert wait_for(lambda: named.poll() is not None)  # what the state named was stopped
        assert holder.poll() is None  # what it did not name was left alone
    finally:
        end(named)
        end(holder)


# --- a cgroup, where one can be made -----------------------------------------------


def cgroup_or_skip() -> None:
    from loader.orchestrator import cgroup

    parent, why = cgroup.own_cgroup()
    if parent is None or not os.access(parent / "cgroup.procs", os.W_OK):
        pytest.skip(f"no writable cgroup here: {why or parent}")


def test_a_server_in_its_own_cgroup_is_stopped_whatever_it_does(orchestra):
    cgroup_or_skip()
    orchestra.overrides.append(fake_command("scrub-escape"))
    state = activated(orchestra, FLORENCE)
    group = Path(state["cgroup"])
    assert state["cgroup_why_not"] is None
    assert group.name.startswith("imageworks-vllm-") and state["instance"][:16] in group.name
    # the server left its launcher's session and parent, and dropped the token
    assert len((group / "cgroup.procs").read_text().split()) == 2
    stopped = orchestra.cli("activate-model", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not port_answers(orchestra.port)
    assert not group.exists()  # removed once empty
    assert nothing_left(orchestra)


def test_without_a_cgroup_the_state_says_why_and_a_scrubbed_escapee_is_named(orchestra):
    orchestra.overrides += [fake_command("scrub-escape"), "orchestrator.use_cgroup=false"]
    state = activated(orchestra, FLORENCE)
    assert state["cgroup"] is None
    assert state["cgroup_why_not"] == "orchestrator.use_cgroup is false"
    stopped = orchestra.cli("activate-model", "--stop")
    # the one case the token misses: the port check names it, and it is left alone
    assert stopped.returncode == 1
    named = re.search(rf"port {orchestra.port} is still held by pid (\d+)", stopped.stderr)
    assert named, stopped.stderr
    assert command_line(int(named.group(1))).split()[2:4] == ["serve", "--model"]
    assert port_answers(orchestra.port)
    assert orchestra.state() is None  # what the state named was stopped


# --- 18.6: launchers and signals ------------------------------------------------


CONVERTED_INTERRUPTION = """
import os, signal, sys, time
from loader.orchestrator.signals import signals_unwind

signum = int(sys.argv[1])
try:
    with signals_unwind():
        try:
            os.kill(os.getpid(), signum)
            time.sleep(30)  # the handler raises here
        except BaseException:
            # What CPython makes of a KeyboardInterrupt raised inside an import
            # statement (seen once in CI, during a start's health checks).
            raise TypeError("expected a message argument") from None
except KeyboardInterrupt:
    raise SystemExit(130)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interruption_that_surfaces_as_another_error_still_ends_as_the_signal_says(signum):
    ended = subprocess.run(
        [sys.executable, "-c", CONVERTED_INTERRUPTION, str(int(signum))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ended.returncode == (130 if signum == signal.SIGINT else -signum), ended.stderr
    assert "TypeError" not in ended.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_a_start_leaves_no_server(orchestra, signum):
    starting = orchestra.popen_cli(
        "activate-model", FLORENCE, env={"VLLM_STANDIN_MODE": "never-healthy"}
    )
    try:
        # the server has started (the CLI's own command line names the stand-in too)
        assert wait_for(
            lambda: any(
                "vllm_standin" in command_line(pid)
                for pid in orchestra.live()
                if pid != starting.pid
            ),
            30,
        )
        starting.send_signal(signum)
        out, err = starting.communicate(timeout=60)
    finally:
        if starting.poll() is None:
            starting.kill()
            starting.wait()
    # ended as the signal says, once the clean-up has run (Ctrl-C: exit code 130)
    assert starting.returncode == (130 if signum == signal.SIGINT else -signum), err
    assert "Traceback" not in err
    assert out == ""
    assert orchestra.state() is None
    assert nothing_left(orchestra)


# With and without a cgroup: where one can be made (here as root, or where
# systemd delegates), the tests would otherwise never see the token at work.
CGROUP = pytest.mark.parametrize("use_cgroup", ["true", "false"], ids=["cgroup", "token"])


@CGROUP
def test_a_server_that_leaves_its_session_is_stopped(orchestra, use_cgroup):
    orchestra.overrides += [fake_command("escape"), f"orchestrator.use_cgroup={use_cgroup}"]
    state = activated(orchestra, FLORENCE)
    assert port_answers(orchestra.port)
    stopped = orchestra.cli("activate-model", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.json() == {"stopped": state}
    assert not port_answers(orchestra.port)
    assert nothing_left(orchestra)


@CGROUP
def test_a_launcher_that_daemonizes_leaves_nothing_on_the_port(orchestra, use_cgroup):
    orchestra.overrides.append(fake_command("daemonize"))
    result = orchestra.cli("activate-model", FLORENCE, f"orchestrator.use_cgroup={use_cgroup}")
    assert result.returncode == 1
    assert "exited with code 0 during start" in result.stderr
    assert orchestra.state() is None
    assert not port_answers(orchestra.port)
    assert nothing_left(orchestra)
    orchestra.overrides.pop()  # the stand-in again: the port is free for it
    assert activated(orchestra, FLORENCE)["logical_name"] == FLORENCE


def test_a_dead_pid_whose_number_lives_on_as_another_session_is_not_signalled(orchestra):
    # Someone else's program: a session leader that forked a worker and exited.
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time\n"
            "if os.fork() == 0:\n    time.sleep(120)\n    os._exit(0)\n"
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    ticks = start_ticks(leader.pid)
    assert wait_for(lambda: len(orchestra.live()) == 2)
    worker = next(pid for pid in orchestra.live() if pid != leader.pid)
    leader.stdin.close()
    leader.wait()
    try:
        assert os.getsid(worker) == leader.pid  # the session keeps the dead leader's number
        # Our server once had that pid number, and exited before the leader started.
        orchestra.write_state(pid=leader.pid, process_start_ticks=ticks - 5)
        result = orchestra.cli("activate-model", "--stop")
        assert result.returncode == 0, result.stderr
        assert result.json() == {"stopped": None}
        assert "no longer running" in result.stderr
        time.sleep(0.2)
        assert worker in orchestra.live()
    finally:
        os.kill(worker, signal.SIGKILL)


def test_a_trickling_health_check_ends_within_the_start_timeout(orchestra):
    orchestra.overrides.append(fake_command("trickle-health"))
    began = time.monotonic()
    proc = subprocess.run(
        [str(CLI), "activate-model", *orchestra.overrides, FLORENCE]
        + ["orchestrator.start_timeout_s=3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - began
    assert proc.returncode == 1, proc.stderr
    assert "not healthy within 3s" in proc.stderr
    assert elapsed < 15  # the start timeout, plus start-up under load
    assert orchestra.state() is None
    assert nothing_left(orchestra)


def test_a_health_answer_past_the_size_cap_is_not_healthy(orchestra):
    orchestra.overrides += [fake_command("huge-models"), "orchestrator.health_max_bytes=65536"]
    result = orchestra.cli("activate-model", FLORENCE, "orchestrator.start_timeout_s=3")
    assert result.returncode == 1
    assert "not healthy within 3s (" in result.stderr
    assert "/v1/models: answer too large" in result.stderr
    assert orchestra.state() is None
    assert nothing_left(orchestra)


def test_a_chatty_server_s_log_is_rotated_at_the_configured_size(orchestra):
    cap = 200_000
    orchestra.overrides += [
        fake_command("chatty"),
        f"orchestrator.log_max_bytes={cap}",
        "orchestrator.log_keep=2",
    ]
    state = activated(orchestra, FLORENCE, env={"FAKE_CHATTY_BYTES": str(3_000_000)})
    log = Path(state["log_path"])
    assert wait_for(lambda: b"chatty: done" in log.read_bytes(), 60)
    pieces = sorted(p.name for p in log.parent.iterdir())
    assert pieces == [log.name, log.name + ".1", log.name + ".2"]
    sizes = [(log.parent / name).stat().st_size for name in pieces]
    assert all(0 < size <= cap for size in sizes), sizes
    # whole lines: a piece is cut at a line's end
    assert all((log.parent / name).read_bytes().endswith(b"\n") for name in pieces[1:])
    stopped = orchestra.cli("activate-model", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert nothing_left(orchestra)
