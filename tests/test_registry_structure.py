"""The registry package keeps its shape (issue 16): no import circle inside it
(function-level and ``TYPE_CHECKING`` imports count: a circle hidden behind a
local import is still a circle), nothing imported from the layers above it,
no private name crossing its boundary, no ``assert`` standing in for error
handling, and no module over 400 lines. An AST walk of the source: no import
of the code under test is needed to see its imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOADER = ROOT / "loader"
PACKAGE = "loader.registry"
# The layers above the registry: it may import none of them.
ABOVE = (
    "loader.frontdoors",
    "loader.cli",
    "loader.apps",
    "loader.operations",
    "loader.pipeline",
    "loader.importers",
    "loader.orchestrator",
    "loader.probe",
    "loader.upkeep",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in LOADER.rglob("*.py")}


def resolve(name: str) -> str | None:
    """The module an imported dotted name lives in (``pkg.mod.Name`` -> ``pkg.mod``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, imported module, imported name or None) for every ``loader``
    import anywhere in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("loader")]
            found += [(node.lineno, name, None) for name in names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("loader"):
            found += [(node.lineno, str(node.module), a.name) for a in node.names]
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES if m.startswith(PACKAGE)}
    for module in edges:
        for _, target, name in imports_of(MODULES[module]):
            resolved = resolve(f"{target}.{name}" if name else target)
            if resolved and resolved != module and resolved.startswith(PACKAGE + "."):
                edges[module].add(resolved)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle_inside_the_registry_package():
    assert find_cycle(graph()) is None, " -> ".join(find_cycle(graph()) or [])


def test_the_cycle_finder_finds_a_circle():
    # The check above can fail: a circle like the old core <-> legacy is found.
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def registry_files() -> list[Path]:
    return sorted(p for name, p in MODULES.items() if name.startswith(PACKAGE))


@pytest.mark.parametrize("path", registry_files(), ids=lambda p: p.name)
def test_a_registry_module_imports_nothing_from_the_layers_above(path):
    for line, target, _ in imports_of(path):
        assert not target.startswith(ABOVE), f"{path.name}:{line}: imports {target}"


def test_no_private_name_crosses_the_registry_boundary():
    crossings = []
    for module, path in MODULES.items():
        for line, target, name in imports_of(path):
            if name is None or not name.startswith("_") or name.startswith("__"):
                continue
            source = resolve(target)
            if source != module and PACKAGE in (source or "") + module:
                crossings.append(f"{path.relative_to(ROOT)}:{line}: {target}.{name}")
        if not module.startswith(PACKAGE):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                crossings.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    assert crossings == []


@pytest.mark.parametrize("path", registry_files(), ids=lambda p: p.name)
def test_no_assert_as_error_handling_in_the_registry(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    assert lines == [], f"{path.name}: assert at lines {lines}"


@pytest.mark.parametrize("path", registry_files(), ids=lambda p: p.name)
def test_no_registry_module_over_400_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 400
