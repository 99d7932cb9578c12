"""First contact: the README's Quickstart on a machine like a fresh Debian or
Ubuntu (system Python externally managed, no uv) and on one that has uv.

The repository is copied (tracked files only) into a temporary folder and
committed there, so the test also sees that the first command leaves
``git status`` clean. uv itself comes from PyPI, as on a new machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from doc_examples_support import checkout, git_status

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = Path("/usr/bin/python3")
SYSTEM_PATH = "/usr/bin:/bin"


def quickstart_commands() -> list[str]:
    """The commands of the README's Quickstart block, comments removed."""
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh[^\n]*\n(.*?)```", section, re.DOTALL).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def clean_env(path: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    env["PATH"] = path
    return env


def externally_managed(python: Path) -> bool:
    probe = (
        "import os, sysconfig; "
        "print(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED'))"
    )
    marker = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    return marker.returncode == 0 and Path(marker.stdout.strip()).is_file()


def test_the_quickstart_is_two_commands_the_demo_list_and_the_tests():
    commands = quickstart_commands()
    assert commands == ["./uvw run imageworks-loader list", "./uvw run pytest"]


@pytest.mark.network  # installs uv from PyPI, as on a fresh machine: CI only
@pytest.mark.skipif(
    not SYSTEM_PYTHON.is_file() or not externally_managed(SYSTEM_PYTHON),
    reason="needs a system python3 that is externally managed (PEP 668), as on Debian/Ubuntu",
)
@pytest.mark.skipif(
    shutil.which("uv", path=SYSTEM_PATH) is not None, reason="uv is installed system-wide"
)
def test_the_first_command_works_where_pip_install_uv_is_refused(tmp_path):
    env = clean_env(SYSTEM_PATH)  # system python3, no uv
    refused = subprocess.run(
        [str(SYSTEM_PYTHON), "-m", "pip", "install", "--dry-run", "uv"],
        capture_output=True,
        text=True,
        env=env,
    )
    if "No module named pip" in refused.stderr:
        pytest.skip("the system python3 has no pip (Debian: apt install python3-pip)")
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr

    clone = checkout(tmp_path / "clone")
    first = quickstart_commands()[0]
    proc = subprocess.run(
        first, shell=True, cwd=clone, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr
    names = [row["name"] for row in json.loads(proc.stdout)]
    assert "qwen3_8b_(Q4_K_M)" in names
    assert (clone / ".tools" / "uv" / "bin" / "uv").is_file()
    assert git_status(clone) == ""


def test_uvw_uses_the_uv_already_on_path(tmp_path):
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("no uv on PATH")
    shutil.copy2(ROOT / "uvw", tmp_path / "uvw")
    env = clean_env(os.pathsep.join([str(Path(uv).parent), SYSTEM_PATH]))
    proc = subprocess.run(
        ["./uvw", "--version"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("uv ")
    assert not (tmp_path / ".tools").exists()  # nothing installed


def test_the_readme_says_how_long_the_test_suite_takes():
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"test suite takes about \d+ minutes", section)
