"""DESIGN section 7: bad input gets one clear line on stderr naming the file, the
entry and the field, exit code 1, no traceback, and no file changed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import (
    CURATED,
    DISCOVERED,
    SNAPSHOT,
    folder_digest,
    read_json,
    run_cli,
    write_json,
)

# Positions in the real registry's layer files (tests/data/imageworks-registry).
CURATED_QWEN3 = ("qwen3_8b_(Q4_K_M)", 13)
CURATED_GPT_OSS = ("gpt-oss-20b_(MXFP4)", 3)
DISCOVERED_ONLY_SIGLIP = ("siglip-large-patch16-384_(FP32)", 15)


@pytest.fixture(params=["with-snapshot", "without-snapshot"])
def registry(request, real_registry) -> Path:
    """A copy of the real registry, with and without its merged snapshot
    (a refused command must neither rewrite nor create it)."""
    if request.param == "without-snapshot":
        (real_registry / SNAPSHOT).unlink()
    return real_registry


def on(folder: Path) -> str:
    return f"registry.dir={folder}"


def refused(folder: Path | None, *args: str, cwd: Path | None = None, env=None) -> str:
    """Run the CLI expecting a refusal; returns the one stderr line."""
    before = folder_digest(folder) if folder is not None and folder.is_dir() else None
    # never the repository: a mistake must not fall back to its configs/ folder
    cwd = cwd or (folder.parent if folder is not None else None)
    assert cwd is not None
    result = run_cli(*args, cwd=cwd, env=env)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    if before is not None:
        assert folder_digest(folder) == before, "a refused command changed the registry"
    return lines[0]


def edit_layer(path: Path, change) -> None:
    entries = read_json(path)
    change(entries)
    write_json(path, entries)


def entry_named(entries: list[dict], name: str) -> dict:
    return next(e for e in entries if e["name"] == name)


# --- the layer files ------------------------------------------------------------


def test_invalid_json_names_the_file_and_the_line_and_column(registry):
    curated = registry / CURATED
    curated.write_text('[\n  {"name": "a"},\n  {"name": "b",}\n]\n', encoding="utf-8")
    line = refused(registry, "list", on(registry))
    assert str(curated) in line
    assert re.search(r"line 3 column \d+", line), line


def test_invalid_json_in_a_real_file_points_at_the_broken_line(registry):
    discovered = registry / DISCOVERED
    text = discovered.read_text(encoding="utf-8")
    broken_at = text.index('"backend": "ollama",')
    broken_line = text.count("\n", 0, broken_at) + 1
    discovered.write_text(text.replace('"backend": "ollama",', '"backend": "ollama"', 1))
    line = refused(registry, "list", on(registry))
    assert str(discovered) in line and "invalid JSON" in line
    reported = int(re.search(r"line (\d+)", line).group(1))
    assert reported in (broken_line, broken_line + 1), line


@pytest.mark.parametrize(
    ("content", "found"),
    [({"name": "a"}, "dict"), ("entries", "str"), (3, "int")],
    ids=["object", "string", "number"],
)
def test_a_layer_that_is_not_a_list_is_refused(registry, content, found):
    curated = registry / CURATED
    curated.write_text(json.dumps(content), encoding="utf-8")
    line = refused(registry, "list", on(registry))
    assert str(curated) in line and "list" in line and found in line


def test_an_entry_that_is_not_an_object_is_refused(registry):
    discovered = registry / DISCOVERED
    edit_layer(discovered, lambda entries: entries.insert(2, ["not", "an", "entry"]))
    line = refused(registry, "list", on(registry))
    assert str(discovered) in line and "index 2" in line


def test_an_entry_without_a_name_is_refused_naming_its_index(registry):
    curated = registry / CURATED
    edit_layer(curated, lambda entries: entries[CURATED_GPT_OSS[1]].pop("name"))
    line = refused(registry, "list", on(registry))
    assert str(curated) in line
    assert f"index {CURATED_GPT_OSS[1]}" in line and "name" in line


@pytest.mark.parametrize("bad_name", ["", "   ", 5, None], ids=["empty", "blank", "int", "null"])
def test_an_entry_whose_name_is_not_a_non_empty_string_is_refused(registry, bad_name):
    curated = registry / CURATED

    def rename(entries):
        entries[CURATED_GPT_OSS[1]]["name"] = bad_name

    edit_layer(curated, rename)
    line = refused(registry, "list", on(registry))
    assert str(curated) in line and f"index {CURATED_GPT_OSS[1]}" in line and "name" in line


def test_duplicate_names_in_one_layer_are_refused_naming_both_indexes(registry):
    curated = registry / CURATED
    name, first = CURATED_GPT_OSS
    edit_layer(curated, lambda entries: entries.append(dict(entries[first])))
    last = len(read_json(curated)) - 1
    line = refused(registry, "list", on(registry))
    assert str(curated) in line and repr(name) in line
    assert "duplicate" in line and str(first) in line and str(last) in line


def test_a_wrong_type_names_file_entry_index_field_and_value(registry):
    curated = registry / CURATED
    name, index = CURATED_QWEN3

    def bad_port(entries):
        entries[index]["backend_config"]["port"] = "abc"

    edit_layer(curated, bad_port)
    line = refused(registry, "list", on(registry))
    expected = (
        f"{curated}: entry '{name}' (index {index}): backend_config.port: not an integer: \"abc\""
    )
    assert expected in line, line


def test_a_wrong_type_in_the_discovered_layer_names_that_file(registry):
    discovered = registry / DISCOVERED
    name, index = DISCOVERED_ONLY_SIGLIP

    def bad_port(entries):
        entries[index]["backend_config"]["port"] = "abc"

    edit_layer(discovered, bad_port)
    line = refused(registry, "select", name, on(registry))
    expected = f"{discovered}: entry '{name}' (index {index}): backend_config.port"
    assert expected in line and "not an integer" in line, line


def test_a_wrong_type_in_a_dynamic_field_names_the_discovered_file(registry):
    discovered = registry / DISCOVERED
    name = "florence-2-large_(FP16)"

    def bad_lock(entries):
        entry_named(entries, name)["version_lock"]["locked"] = "maybe"

    edit_layer(discovered, bad_lock)
    index = next(i for i, e in enumerate(read_json(discovered)) if e["name"] == name)
    line = refused(registry, "list", on(registry))
    assert f"{discovered}: entry '{name}' (index {index}): version_lock.locked" in line, line
    assert "maybe" in line


def test_an_interpolation_that_does_not_resolve_names_file_entry_field_and_text(registry):
    curated = registry / CURATED
    name, index = CURATED_QWEN3

    def bad_host(entries):
        entries[index]["backend_config"]["host"] = "${nope.missing}"

    edit_layer(curated, bad_host)
    line = refused(registry, "list", on(registry))
    assert f"{curated}: entry '{name}' (index {index}): backend_config.host" in line, line
    assert "${nope.missing}" in line


def test_an_interpolation_loop_is_refused_in_one_line(registry):
    curated = registry / CURATED
    name, index = CURATED_QWEN3

    def looping_host(entries):
        entries[index]["backend_config"]["host"] = "${loop.a}"

    edit_layer(curated, looping_host)
    line = refused(
        registry,
        "select",
        name,
        on(registry),
        "+loop.a=${loop.b}",
        "+loop.b=${loop.a}",
    )
    assert f"{curated}: entry '{name}' (index {index}): backend_config.host" in line, line
    assert "${loop.a}" in line and "resolves in a loop" in line, line


def test_non_utf8_bytes_are_refused_naming_the_file_and_position(registry):
    curated = registry / CURATED
    curated.write_bytes(b'[\n  {"name": "caf\xe9"}\n]\n')
    line = refused(registry, "list", on(registry))
    assert str(curated) in line and "UTF-8" in line
    assert "0xe9" in line and "line 2" in line, line


@pytest.mark.parametrize("content", [b"", b"  \n\n"], ids=["zero-bytes", "whitespace"])
@pytest.mark.parametrize("layer", [CURATED, DISCOVERED])
def test_an_empty_layer_file_is_refused(registry, layer, content):
    (registry / layer).write_bytes(content)
    line = refused(registry, "list", on(registry))
    assert str(registry / layer) in line and "empty" in line


def test_a_layer_broken_after_a_successful_run_is_still_refused(registry):
    """The snapshot cache must not hide a broken layer."""
    assert run_cli("list", on(registry)).returncode == 0
    curated = registry / CURATED
    name, index = CURATED_QWEN3

    def bad_port(entries):
        entries[index]["backend_config"]["port"] = "abc"

    edit_layer(curated, bad_port)
    line = refused(registry, "list", on(registry))
    assert f"{curated}: entry '{name}' (index {index}): backend_config.port" in line


# --- the registry folder --------------------------------------------------------


def test_a_missing_registry_folder_is_named_and_not_created(tmp_path):
    absent = tmp_path / "absent"
    line = refused(None, "list", on(absent), cwd=tmp_path)
    assert str(absent) in line and "not found" in line
    assert not absent.exists()


def test_a_missing_registry_folder_from_the_env_variable_is_named(tmp_path):
    absent = tmp_path / "absent"
    work = tmp_path / "work"
    work.mkdir()
    line = refused(None, "list", cwd=work, env={"IMAGEWORKS_REGISTRY_DIR": str(absent)})
    assert str(absent) in line
    assert not absent.exists() and list(work.iterdir()) == []


def test_a_registry_folder_without_layer_files_is_refused_and_left_empty(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    line = refused(folder, "list", on(folder))
    assert str(folder) in line
    assert list(folder.iterdir()) == []


# --- unknown models ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["select", "metrics", "explain"])
def test_an_unknown_model_is_refused_naming_it(registry, command):
    line = refused(registry, command, "no-such-model_(Q4)", on(registry))
    assert "no-such-model_(Q4)" in line


def test_an_unknown_model_suggests_close_names(registry):
    line = refused(registry, "select", "qwen3_8b_(Q4_K_S)", on(registry))
    assert "qwen3_8b_(Q4_K_M)" in line


def test_an_unknown_model_in_a_sweep_is_refused(registry):
    line = refused(registry, "metrics", "-m", "name='no-such-model'", on(registry))
    assert "no-such-model" in line


def test_a_missing_capability_is_refused_naming_it(registry):
    name = CURATED_GPT_OSS[0]
    line = refused(registry, "select", name, "--require-vision", on(registry))
    assert name in line and "vision" in line


# --- malformed overrides ----------------------------------------------------------

SET_CASES = {
    "no-equals-sign": ("qwen3_8b_(Q4_K_M).backend_config.port", ["expected NAME.FIELD=VALUE"]),
    "empty-key": ("=9000", ["expected NAME.FIELD=VALUE"]),
    "names-no-entry": ("no-such-model.backend_config.port=1", ["no-such-model"]),
    "entry-without-field": ("qwen3_8b_(Q4_K_M)=1", ["qwen3_8b_(Q4_K_M)"]),
    "empty-field-path": ("qwen3_8b_(Q4_K_M).=1", ["qwen3_8b_(Q4_K_M)"]),
    "renames-the-entry": ("qwen3_8b_(Q4_K_M).name=other", ["name"]),
    "wrong-type-value": (
        "qwen3_8b_(Q4_K_M).backend_config.port=abc",
        ["qwen3_8b_(Q4_K_M)", "backend_config.port", "not an integer"],
    ),
    "unresolvable-value": (
        "qwen3_8b_(Q4_K_M).backend_config.host=${nope.missing}",
        ["qwen3_8b_(Q4_K_M)", "backend_config.host", "${nope.missing}"],
    ),
}


@pytest.mark.parametrize(("text", "fragments"), list(SET_CASES.values()), ids=list(SET_CASES))
def test_a_malformed_set_override_is_refused_quoting_it(registry, text, fragments):
    line = refused(registry, "select", "qwen3_8b_(Q4_K_M)", "--set", text, on(registry))
    assert text in line, line
    for fragment in fragments:
        assert fragment in line, line


HYDRA_CASES = {
    "double-equals": "badkey==x",
    "unknown-key": "nosuch.key=1",
    "unbalanced-quote": "registry.curated='x",
}


@pytest.mark.parametrize("override", list(HYDRA_CASES.values()), ids=list(HYDRA_CASES))
def test_a_malformed_config_override_is_refused_quoting_it(registry, override):
    line = refused(registry, "list", on(registry), override)
    assert override.split("=")[0] in line, line


@pytest.mark.parametrize("flag", [("--cfg", "job"), ("-m",)], ids=["cfg-job", "multirun"])
def test_a_malformed_config_override_with_a_hydra_flag_is_one_line(registry, flag):
    line = refused(registry, "list", *flag, on(registry), "badkey==x")
    assert "badkey==x" in line, line


def test_a_bad_layer_in_a_sweep_is_refused_in_one_line(registry):
    curated = registry / CURATED
    curated.write_text("[", encoding="utf-8")
    line = refused(registry, "metrics", "-m", "name='qwen3_8b_(Q4_K_M)'", on(registry))
    assert str(curated) in line and "invalid JSON" in line


@pytest.mark.parametrize(
    "words",
    [("select",), ("list", "{dir}", "--set"), ("list", "{dir}", "--role"), ("no-such-command",)],
    ids=["missing-name", "set-without-value", "role-without-value", "unknown-command"],
)
def test_command_line_usage_errors_exit_1_not_the_integrity_code(registry, words):
    # DESIGN section 7: 1 for usage errors; 2 is reserved for integrity failures.
    before = folder_digest(registry)
    args = [w.format(dir=on(registry)) for w in words]
    if on(registry) not in args:
        args.append(on(registry))
    result = run_cli(*args, cwd=registry.parent)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert folder_digest(registry) == before
