"""Warnings through logging: one handler at the front door, one line each
(text, or JSON lines under profile.log_format=json), restored afterwards."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from loader import logs


def test_a_warning_is_one_text_line_with_the_programs_name(capsys) -> None:
    with logs.front_door_logging():
        logs.warning("loader.registry.compose", "model 'm': masked\nfield")
    assert capsys.readouterr().err == "imageworks-loader: warning: model 'm': masked field\n"


def test_json_lines_carry_the_level_the_source_and_the_message(capsys) -> None:
    with logs.front_door_logging(json_lines=True):
        logs.warning("loader.integrity.hashing", "cache damaged")
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["level"] == record["event"] == "warning"
    assert record["source"] == "loader.integrity.hashing"
    assert record["message"] == "cache damaged"
    assert record["time"].endswith("+00:00")


def test_the_door_switches_to_json_once_the_config_is_known(capsys) -> None:
    with logs.front_door_logging():
        logs.use_config({"profile": {"log_format": "json"}})
        logs.warning("loader", "late")
    assert json.loads(capsys.readouterr().err)["message"] == "late"


def test_progress_is_the_message_alone_and_nesting_uses_one_door(capsys) -> None:
    logger = logging.getLogger("loader")
    with logs.front_door_logging() as outer, logs.front_door_logging() as inner:
        assert inner is outer
        logs.info("loader.orchestrator.switch", "starting 'm' on port 1")
        logs.warning("loader.x", "shown")
        logging.getLogger("loader.x").debug("not shown")
        assert sum(h is outer.handler for h in logger.handlers) == 1
    assert capsys.readouterr().err == "starting 'm' on port 1\nimageworks-loader: warning: shown\n"


def test_the_logger_is_restored_after_the_door_closes() -> None:
    logger = logging.getLogger("loader")
    before = (list(logger.handlers), logger.level, logger.propagate)
    with logs.front_door_logging():
        logs.info("loader", "x")
        assert logger.propagate is False
    assert (list(logger.handlers), logger.level, logger.propagate) == before


def test_wants_json_lines_reads_the_profile_only() -> None:
    assert logs.wants_json_lines({"profile": {"log_format": "json"}})
    assert not logs.wants_json_lines({"profile": {"log_format": "text"}})
    assert not logs.wants_json_lines({})
    assert not logs.wants_json_lines(None)


def test_logging_is_not_imported_until_a_record_comes() -> None:
    code = (
        "import sys; from loader import logs\n"
        "with logs.front_door_logging(): pass\n"
        "print('logging' in sys.modules)\n"
        "with logs.front_door_logging(): logs.warning('loader', 'w')\n"
        "print('logging' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "True"]
    assert run.stderr == "imageworks-loader: warning: w\n"


def test_a_program_using_the_library_sees_warnings_until_it_configures_logging() -> None:
    code = (
        "import logging; from loader import logs\n"
        "logs.info('loader.x', 'progress')\n"
        "logs.warning('loader.x', 'before')\n"
        "logging.basicConfig(format='%(levelname)s %(name)s %(message)s')\n"
        "logs.warning('loader.x', 'after')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stderr.splitlines() == ["warning: before", "WARNING loader.x after"]


# --- the three front doors, as real processes ------------------------------------

ROOT = Path(__file__).resolve().parent.parent
PORT_ZERO = [{"name": "m", "backend": "vllm", "backend_config": {"port": 0}}]
DOORS = {
    "cli": [str(Path(sys.executable).parent / "imageworks-loader"), "list"],
    "app": [sys.executable, "-m", "loader.apps", "list"],
    "doit": [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), "list"],
}


@pytest.mark.parametrize("door", sorted(DOORS))
@pytest.mark.parametrize("profile", ["default", "ci"])
def test_each_door_shows_a_librarys_warning_as_its_profile_says(tmp_path, door, profile):
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "model_registry.curated.json").write_text(json.dumps(PORT_ZERO))
    (folder / "model_registry.discovered.json").write_text("[]")
    run = subprocess.run(
        [*DOORS[door], f"registry.dir={folder}", f"profile={profile}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if "port" in line]
    assert len(lines) == 1, run.stderr
    if profile == "ci":
        record = json.loads(lines[0])
        assert (record["level"], record["source"]) == ("warning", "loader.registry.validation")
        assert "backend_config.port: 0 means no port" in record["message"]
    else:
        prog = "doit" if door == "doit" else "imageworks-loader"
        assert lines[0].startswith(f"{prog}: warning: "), lines[0]
        assert "entry 'm' (index 0): backend_config.port: 0 means no port" in lines[0]
