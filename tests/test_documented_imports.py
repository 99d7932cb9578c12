"""Every ``from loader… import …`` line the docs show keeps working.

The layout moved (issue 16): ``loader.registry``, ``loader.hashing``,
``loader.locks`` and friends are documented paths, kept by re-exports and thin
compatibility modules. This test reads the import lines out of README.md and
docs/*.md and imports each name from its documented module.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMPORT = re.compile(r"^(?:>>>\s*)?from (loader(?:\.\w+)*) import ([\w, ]+)$")


def _documented() -> list[tuple[str, str, str]]:
    found = set()
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in page.read_text(encoding="utf-8").splitlines():
            match = IMPORT.match(line.strip())
            if match:
                for name in match.group(2).split(","):
                    found.add((page.name, match.group(1), name.strip()))
    return sorted(found)


DOCUMENTED = _documented()


def test_the_docs_document_the_core_paths() -> None:
    modules = {module for _, module, _ in DOCUMENTED}
    for path in ("loader.registry", "loader.service", "loader.hashing", "loader.locks"):
        assert path in modules


@pytest.mark.parametrize(("page", "module", "name"), DOCUMENTED)
def test_a_documented_name_imports_from_its_documented_path(page, module, name) -> None:
    assert hasattr(importlib.import_module(module), name), f"{page}: from {module} import {name}"


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("loader", "load_registry"),
        ("loader", "verify_model"),
        ("loader", "RegistryEntry"),
        ("loader.roles", "select_by_role"),
        ("loader.schema", "RegistryEntry"),
        ("loader.cli", "console_main"),
        ("loader.apps", "main"),
        ("loader.performance", "record_performance"),
        ("loader.config", "load_config"),
        ("loader.errors", "VersionLockViolation"),
    ],
)
def test_the_compatibility_paths_resolve(module, name) -> None:
    assert hasattr(importlib.import_module(module), name)


def test_the_facade_exports_what_it_declares_and_its_type_block_agrees() -> None:
    """``__all__``, the lazy table and the ``TYPE_CHECKING`` imports (what IDEs
    see) name the same things, and each resolves to the object its module has."""
    import ast

    import loader

    assert sorted(loader.__all__) == sorted(loader._EXPORTS)
    tree = ast.parse(Path(loader.__file__).read_text())
    typed = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for stmt in node.body
        if isinstance(stmt, ast.ImportFrom)
        for alias in stmt.names
    }
    assert typed == set(loader.__all__)
    for name in loader.__all__:
        module = importlib.import_module(f"loader.{loader._EXPORTS[name]}")
        assert getattr(loader, name) is getattr(module, name)
    assert set(loader.__all__) <= set(dir(loader))
