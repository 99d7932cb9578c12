"""The layering contracts in pyproject.toml ([tool.importlinter]) hold, and
they bite: a copy of the package with one deliberate violation of each kind
makes ``lint-imports`` (the step .ci/run runs) fail, naming the contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the ``loader`` package found in ``package_parent``."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=package_parent,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(package_parent)},
        timeout=120,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "loader", tmp_path / "loader", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def test_the_package_keeps_every_contract(copy: Path) -> None:
    run = lint_imports(copy)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


VIOLATIONS = {
    # an arrow pointing up: the registry importing a front door
    "layers": (
        "registry/merge.py",
        "import loader.frontdoors.output  # noqa\n",
        "front doors -> operations",
    ),
    # two features that must not know each other
    "features": (
        "probe/images.py",
        "import loader.importers.plan  # noqa\n",
        "front doors -> operations",
    ),
    # one front door importing another
    "front-doors": (
        "frontdoors/cli.py",
        "import loader.frontdoors.apps  # noqa\n",
        "do not import each other",
    ),
    # a module inside the package using a compatibility path
    "old-paths": ("upkeep/audit.py", "import loader.service  # noqa\n", "old import paths"),
    # the hashing engine reaching for the registry
    "engine": (
        "integrity/hash_cache.py",
        "import loader.registry.layers  # noqa\n",
        "without a registry",
    ),
    # a circle between two modules of one package
    "circle": (
        "registry/merge.py",
        "import loader.registry.compose  # noqa\n",
        "no import circles",
    ),
}


@pytest.mark.parametrize("kind", sorted(VIOLATIONS))
def test_a_deliberate_violation_breaks_its_contract(copy: Path, kind: str) -> None:
    module, line, contract = VIOLATIONS[kind]
    path = copy / "loader" / module
    path.write_text(path.read_text() + "\n" + line)
    run = lint_imports(copy)
    assert run.returncode == 1, run.stdout + run.stderr
    broken = run.stdout[run.stdout.index("Broken contracts") :]
    assert contract in broken, run.stdout
