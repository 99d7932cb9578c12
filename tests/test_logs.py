"""Warnings through logging: one handler at the front door, one line each
(text, or JSON lines under profile.log_format=json), restored afterwards."""

from __future__ import annotations

import json
import logging

from loader.logs import OneLineHandler, front_door_logging, wants_json_lines


def test_a_warning_is_one_text_line_with_the_programs_name(capsys) -> None:
    with front_door_logging():
        logging.getLogger("loader.registry.compose").warning("model %r: masked\nfield", "m")
    err = capsys.readouterr().err
    assert err == "imageworks-loader: warning: model 'm': masked field\n"


def test_json_lines_carry_the_level_the_source_and_the_message(capsys) -> None:
    with front_door_logging(json_lines=True):
        logging.getLogger("loader.integrity.hashing").warning("cache damaged")
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["level"] == record["event"] == "warning"
    assert record["source"] == "loader.integrity.hashing"
    assert record["message"] == "cache damaged"
    assert record["time"].endswith("+00:00")


def test_the_handler_switches_to_json_once_the_config_is_known(capsys) -> None:
    with front_door_logging() as handler:
        handler.json_lines = wants_json_lines({"profile": {"log_format": "json"}})
        logging.getLogger("loader").warning("late")
    assert json.loads(capsys.readouterr().err)["message"] == "late"


def test_progress_is_the_message_alone_debug_is_hidden_and_nesting_uses_one_handler(
    capsys,
) -> None:
    logger = logging.getLogger("loader")
    with front_door_logging() as outer, front_door_logging() as inner:
        assert inner is outer
        assert sum(isinstance(h, OneLineHandler) for h in logger.handlers) == 1
        logging.getLogger("loader.x").debug("not shown")
        logging.getLogger("loader.x").info("starting 'm' on port 1")
        logging.getLogger("loader.x").warning("shown")
    err = capsys.readouterr().err
    assert err == "starting 'm' on port 1\nimageworks-loader: warning: shown\n"


def test_the_logger_is_restored_after_the_door_closes() -> None:
    logger = logging.getLogger("loader")
    before = (list(logger.handlers), logger.level, logger.propagate)
    with front_door_logging():
        assert logger.propagate is False
    assert (list(logger.handlers), logger.level, logger.propagate) == before


def test_wants_json_lines_reads_the_profile_only() -> None:
    assert wants_json_lines({"profile": {"log_format": "json"}})
    assert not wants_json_lines({"profile": {"log_format": "text"}})
    assert not wants_json_lines({})
    assert not wants_json_lines(None)
