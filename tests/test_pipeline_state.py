"""The pipeline's state against damage and unwritable disks (issue 18 item 10):
a damaged doit database is moved aside and rebuilt; a read-only registry or a
full disk is one line, exit 1, and the registry's files unchanged, through
both doors (``imageworks-loader refresh`` and ``doit``)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess

import pytest
from conftest import CLI, CURATED, DISCOVERED, folder_digest
from pipeline_support import make_site

DOORS = ("refresh", "doit")


def run(site, door: str, *overrides: str) -> subprocess.CompletedProcess:
    if door == "doit":
        return site.doit(overrides=overrides)
    return subprocess.run(
        [str(CLI), "refresh", f"registry.dir={site.registry}", *overrides],
        capture_output=True,
        text=True,
        env=site.env,
        cwd=site.registry.parent,
        timeout=180,
    )


def problem_lines(stderr: str) -> list[str]:
    """stderr without doit's progress lines (`.  task`, `-- task`)."""
    return [line for line in stderr.splitlines() if line[:3] not in (".  ", "-- ")]


def recorded_hashes(site) -> dict[str, object]:
    return {e["name"]: e.get("artifacts") for e in site.discovered()}


@pytest.fixture
def site(tmp_path):
    return make_site(tmp_path)


def _truncated(db: bytes) -> bytes:
    return db[: len(db) // 2]


DAMAGE = {
    "garbage": lambda db: os.urandom(len(db)),
    "truncated": _truncated,
    "text": lambda db: b"this is not a database\n",
}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_database_is_moved_aside_and_rebuilt(site, door, damage):
    first = run(site, door)
    assert first.returncode == 0, first.stderr
    state = site.registry / ".imageworks-state"
    database = state / "doit.sqlite3"
    database.write_bytes(DAMAGE[damage](database.read_bytes()))
    hashes = recorded_hashes(site)

    again = run(site, door)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    lines = problem_lines(again.stderr)
    # one warning line, as every front door shows one: "PROG: warning: ..."
    assert len(lines) == 1 and ": warning: " in lines[0] and "damaged" in lines[0], lines
    aside = [p for p in state.iterdir() if p.name.startswith("doit.sqlite3.damaged-")]
    assert len(aside) == 1 and aside[0].name in lines[0]
    with sqlite3.connect(database) as conn:  # rebuilt, and holding doit's records again
        assert conn.execute("select count(*) from doit").fetchone()[0] > 0
    # Its results were re-derived (verify ran again): the recorded hashes are the same.
    assert recorded_hashes(site) == hashes
    third = run(site, door)
    assert third.returncode == 0 and problem_lines(third.stderr) == [], third.stderr


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs (root only); unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        timeout=30,
    )
    if proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root); test_an_unwritable_state_folder covers")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def fill(disk) -> None:
    """Write until the disk is full."""
    with open(disk / "filler", "wb", buffering=0) as out, pytest.raises(OSError):
        while True:
            out.write(b"\0" * 4096)
    assert os.statvfs(disk).f_bavail == 0


def _site_on(disk, tmp_path):
    site = make_site(tmp_path)
    registry = disk / "registry"
    shutil.copytree(site.registry, registry)
    site.registry = registry
    return site


def _refused_in_one_line(proc, *words):
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = problem_lines(proc.stderr)
    assert len(lines) == 1, lines
    assert all(word in lines[0] for word in words), lines[0]


@pytest.mark.parametrize("door", DOORS)
def test_a_read_only_registry_is_one_line(tiny_disk, tmp_path, door):
    site = _site_on(tiny_disk, tmp_path)
    before = folder_digest(site.registry)
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True, timeout=30)
    _refused_in_one_line(run(site, door), str(site.registry), "read-only")
    assert folder_digest(site.registry) == before
    assert sorted(os.listdir(site.registry)) == [CURATED, DISCOVERED]


@pytest.mark.parametrize("door", DOORS)
def test_a_full_disk_is_one_line(tiny_disk, tmp_path, door):
    site = _site_on(tiny_disk, tmp_path)
    before = folder_digest(site.registry)
    fill(tiny_disk)
    _refused_in_one_line(run(site, door), str(site.registry), "no space")
    assert folder_digest(site.registry) == before
    assert sorted(os.listdir(site.registry)) == [CURATED, DISCOVERED]


@pytest.mark.parametrize("door", DOORS)
def test_a_full_disk_under_the_state_folder_alone_is_one_line(tiny_disk, tmp_path, door):
    site = make_site(tmp_path)
    before = folder_digest(site.registry)
    fill(tiny_disk)
    state = tiny_disk / "state"
    _refused_in_one_line(run(site, door, f"pipeline.state_dir={state}"), "doit", "full")
    assert folder_digest(site.registry) == before
    assert not state.exists()


@pytest.mark.parametrize("door", DOORS)
def test_an_unwritable_state_folder_is_one_line(site, tmp_path, door):
    """Without root: a file where the state folder should be."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")
    before = folder_digest(site.registry)
    proc = run(site, door, f"pipeline.state_dir={blocker}/state")
    _refused_in_one_line(proc, str(blocker), "state folder")
    assert folder_digest(site.registry) == before
    assert sorted(os.listdir(site.registry)) == [CURATED, DISCOVERED]
