"""A removed entry leaves the snapshot (issue 17 item 6).

It used to stay for good, through ``remove_entry()`` or a hand deletion from
curated: every command warned about "entries only in the merged snapshot",
``snapshot`` wrote nothing, and the suggested ``migrate`` brought it back.
The registries here interpolate ``${…}``, so the user's snapshot stamps are
never recorded (as with the demo registry); each CLI run also gets a fresh
cache, so nothing here relies on the user's cache.
"""

from __future__ import annotations

import pytest
from conftest import CURATED, DISCOVERED, SNAPSHOT, read_json, run_cli, write_json

WARNING = "only in the merged snapshot"


def entry(name: str) -> dict:
    return {
        "name": name,
        "backend": "vllm",
        "backend_config": {"port": "${backends.vllm.port}", "model_path": f"/m/{name}"},
    }


@pytest.fixture
def folder(tmp_path):
    reg = tmp_path / "reg"
    reg.mkdir()
    write_json(reg / CURATED, [entry("kept_(A)"), entry("curated-gone_(B)")])
    write_json(reg / DISCOVERED, [{"name": "tooling-only_(C)", "backend": "ollama"}])
    return reg


def cli(folder, tmp_path, *args):
    cache = tmp_path / f"cache-{len(list(tmp_path.glob('cache-*')))}"
    return run_cli(*args, f"registry.dir={folder}", env={"IMAGEWORKS_LOADER_CACHE": str(cache)})


def snapshot_names(folder) -> list[str]:
    return [e["name"] for e in read_json(folder / SNAPSHOT)]


def test_remove_entry_removes_it_from_the_snapshot(folder, tmp_path):
    assert cli(folder, tmp_path, "list").returncode == 0
    assert "tooling-only_(C)" in snapshot_names(folder)

    from loader.registry.core import load_registry, remove_entry

    load_registry(folder)
    remove_entry("tooling-only_(C)")
    assert "tooling-only_(C)" not in snapshot_names(folder)

    for args in (("list",), ("snapshot",)):
        result = cli(folder, tmp_path, *args)
        assert result.returncode == 0 and WARNING not in result.stderr, result.stderr
    migrated = cli(folder, tmp_path, "migrate")
    assert migrated.json()["action"] == "nothing"
    assert "tooling-only_(C)" not in [e["name"] for e in read_json(folder / DISCOVERED)]


def test_a_hand_deletion_from_curated_leaves_the_snapshot_too(folder, tmp_path):
    assert cli(folder, tmp_path, "list").returncode == 0
    write_json(folder / CURATED, [entry("kept_(A)")])  # deleted by hand

    listed = cli(folder, tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    assert WARNING not in listed.stderr
    assert "curated-gone_(B)" not in snapshot_names(folder)
    assert [r["name"] for r in listed.json()] == ["kept_(A)", "tooling-only_(C)"]
    migrated = cli(folder, tmp_path, "migrate")
    assert migrated.returncode == 0 and migrated.json()["action"] == "nothing"
    assert "curated-gone_(B)" not in [e["name"] for e in read_json(folder / DISCOVERED)]


def test_a_hand_added_snapshot_entry_is_still_kept_and_offered_but_a_removed_one_is_not(
    folder, tmp_path
):
    assert cli(folder, tmp_path, "list").returncode == 0
    snapshot = read_json(folder / SNAPSHOT)
    snapshot.append({"name": "hand-added_(Q8_0)", "backend": "ollama"})
    write_json(folder / SNAPSHOT, snapshot)
    write_json(folder / CURATED, [entry("kept_(A)")])  # and a hand deletion

    listed = cli(folder, tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    warnings = [line for line in listed.stderr.splitlines() if WARNING in line]
    assert len(warnings) == 1 and "'hand-added_(Q8_0)'" in warnings[0]
    assert "curated-gone_(B)" not in warnings[0]
    assert "hand-added_(Q8_0)" in snapshot_names(folder)  # kept for migrate

    migrated = cli(folder, tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.json()["adopted"] == ["hand-added_(Q8_0)"]
    assert cli(folder, tmp_path, "list").stderr == ""
    names = snapshot_names(folder)
    assert "hand-added_(Q8_0)" in names and "curated-gone_(B)" not in names
