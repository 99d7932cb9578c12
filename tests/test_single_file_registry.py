"""A legacy single-file registry (``load_registry("…/model_registry.json")``)
answers every operation: a correct result where one exists (``explain``), or
one line naming the file and ``migrate`` where it would have to be written
(``remove_entry``, ``write_snapshot``). Never an ``AssertionError`` (nor, under
``python -O``, an ``AttributeError``): the single file is a storage strategy
of the one ``Registry``, which holds the same state either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REAL_REGISTRY, SNAPSHOT, folder_digest, read_json, write

from loader.errors import RegistryError, RegistryWriteError
from loader.registry.core import default_registry, load_registry, remove_entry
from loader.registry.legacy import SingleFileReadOnly

NAME = "qwen3_8b_(Q4_K_M)"


@pytest.fixture
def legacy_file(tmp_path) -> Path:
    """The real registry's merged snapshot, alone in its folder."""
    return write(tmp_path / "legacy" / SNAPSHOT, (REAL_REGISTRY / SNAPSHOT).read_bytes())


def test_explain_on_a_single_file_names_the_file_as_the_layer_of_every_field(legacy_file):
    entries = load_registry(legacy_file)
    explained = default_registry().explain(NAME)
    index = [e["name"] for e in read_json(legacy_file)].index(NAME)
    assert explained["name"] == NAME
    assert explained["layers"] == {
        "curated": None,
        "discovered": {"file": str(legacy_file), "index": index},
    }
    rows = {row["field"]: row for row in explained["fields"]}
    assert rows["backend"] == {"field": "backend", "value": "ollama", "source": "discovered"}
    assert rows["backend"]["value"] == entries[NAME].backend


def test_remove_entry_on_a_single_file_refuses_before_changing_anything(legacy_file):
    load_registry(legacy_file)
    before = folder_digest(legacy_file.parent)
    with pytest.raises(SingleFileReadOnly, match=r"read-only here; split it .* migrate") as info:
        remove_entry(NAME)
    assert isinstance(info.value, RegistryWriteError)
    assert "\n" not in str(info.value) and str(legacy_file) in str(info.value)
    assert NAME in default_registry().entries  # refused before the entry was dropped
    assert folder_digest(legacy_file.parent) == before

    remove_entry(NAME, save=False)  # in memory only: that much works
    assert NAME not in default_registry().entries
    assert folder_digest(legacy_file.parent) == before


def test_write_snapshot_on_a_single_file_says_the_file_is_its_own_snapshot(legacy_file):
    load_registry(legacy_file)
    before = folder_digest(legacy_file.parent)
    with pytest.raises(SingleFileReadOnly, match="its own snapshot") as info:
        default_registry().write_snapshot()
    assert "\n" not in str(info.value)
    assert folder_digest(legacy_file.parent) == before
    assert sorted(p.name for p in legacy_file.parent.iterdir()) == [SNAPSHOT]


def test_a_single_file_registry_is_not_confused_with_its_folder(legacy_file, real_registry):
    single = load_registry(legacy_file)
    assert default_registry().single_file == legacy_file
    folder = load_registry(real_registry)  # another registry: a folder
    assert default_registry().single_file is None
    assert sorted(folder) == sorted(single)


# What a front door does with an error: one line, the error's exit code.
PROGRAM = """
import json, sys
from loader.errors import RegistryError
from loader.registry.core import default_registry, load_registry, remove_entry

path, operation, name = sys.argv[1:]
load_registry(path)
try:
    if operation == "explain":
        result = default_registry().explain(name)
    elif operation == "remove_entry":
        result = remove_entry(name)
    else:
        result = default_registry().write_snapshot()
except RegistryError as exc:
    print(f"imageworks-loader: error: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
print(json.dumps(result))
"""


@pytest.mark.parametrize("optimize", [False, True], ids=["plain", "python-O"])
@pytest.mark.parametrize("operation", ["explain", "remove_entry", "write_snapshot"])
def test_each_operation_on_a_single_file_gives_a_result_or_one_line_in_a_process(
    legacy_file, operation, optimize
):
    before = folder_digest(legacy_file.parent)
    flags = ["-O"] if optimize else []
    proc = subprocess.run(
        [sys.executable, *flags, "-c", PROGRAM, str(legacy_file), operation, NAME],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert "Traceback" not in proc.stderr
    if operation == "explain":
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["name"] == NAME
    else:
        assert proc.returncode == 1
        assert proc.stdout == ""
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and "migrate" in lines[0] and str(legacy_file) in lines[0]
    assert folder_digest(legacy_file.parent) == before


@pytest.mark.parametrize("command", [["explain", NAME], ["snapshot"], ["list"]])
def test_the_cli_under_python_O_on_a_folder_holding_only_the_legacy_file(legacy_file, command):
    """The CLI reads registry folders: one holding only ``model_registry.json``
    is answered with the one line that says to migrate it, even under -O."""
    proc = subprocess.run(
        [sys.executable, "-O", "-m", "loader", *command, f"registry.dir={legacy_file.parent}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"imageworks-loader: error: {legacy_file.parent}: holds only {SNAPSHOT}, a legacy "
        "single-file registry; split it into layers with: imageworks-loader migrate"
    ]


def test_single_file_errors_are_registry_errors():
    assert issubclass(SingleFileReadOnly, RegistryWriteError)
    assert issubclass(SingleFileReadOnly, RegistryError)
    assert SingleFileReadOnly.exit_code == 1
