"""The import map in docs/architecture.md is the real one: every import in src/ follows it.

The map is the table under "## Packages and import directions": one row per package
(or top-level module) of ``modelyard``, with the packages it may import. This test walks
every module's AST — imports at module level, inside functions and under
``TYPE_CHECKING`` alike — and fails on an edge the map does not allow, on a
cross-package import of a private module or name, on a package missing from the map,
and on a cycle in the map itself.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "modelyard"
DOC = ROOT / "docs" / "architecture.md"
HEADING = "## Packages and import directions"
ROOT_PACKAGE = "modelyard"  # src/modelyard/__init__.py: the public fluent API


@dataclass(frozen=True)
class Edge:
    source: str  # the importing file, relative to src/
    line: int
    importer: str  # its package
    target: str  # the imported module path (modelyard.x.y) or module.name
    imported: str  # the imported package


def read_map(text: str) -> dict[str, set[str]]:
    """package -> packages it may import, from the table under HEADING."""
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    allowed: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        package = cells[0].strip("`")
        targets = set(re.findall(r"`([\w.]+)`", cells[2]))
        allowed[package] = targets
    return allowed


def package_of(module: str) -> str:
    """``modelyard.store._engine`` -> ``store``; ``modelyard`` or a name defined in
    ``modelyard/__init__.py`` -> ``modelyard``."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in packages():
        return parts[1]
    return ROOT_PACKAGE


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def packages() -> frozenset[str]:
    found = {ROOT_PACKAGE}
    for child in SRC.iterdir():
        if child.is_dir() and (child / "__init__.py").exists():
            found.add(child.name)
        elif child.suffix == ".py" and child.stem != "__init__":
            found.add(child.stem)
    return frozenset(found)


def _is_private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def edges() -> Iterator[Edge]:
    for path in sorted(SRC.rglob("*.py")):
        importer = package_of(module_name(path))
        source = str(path.relative_to(SRC.parent))
        for node in ast.walk(ast.parse(path.read_text(), filename=source)):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if re.fullmatch(r"modelyard\.__\w+__", target):
                    continue  # package metadata (__version__): no dependency
                if target == "modelyard" or target.startswith("modelyard."):
                    yield Edge(source, node.lineno, importer, target, package_of(target))


def private_part(target: str) -> str | None:
    """The first private component after the package, if any."""
    for part in target.split(".")[2:]:
        if _is_private(part):
            return part
    return None


def test_every_package_is_on_the_map_and_the_map_has_no_stale_rows() -> None:
    allowed = read_map(DOC.read_text())
    assert packages() - set(allowed) == set(), "packages missing from docs/architecture.md"
    assert set(allowed) - packages() == set(), "rows for packages that do not exist"
    for package, targets in allowed.items():
        assert targets <= packages(), f"{package} may import unknown {targets - packages()}"


def test_the_map_has_no_cycle() -> None:
    allowed = read_map(DOC.read_text())
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(package: str, path: list[str]) -> None:
        state[package] = 1
        for target in sorted(allowed.get(package, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [target]
                raise AssertionError(f"cycle in the map: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, [*path, target])
        state[package] = 2

    for package in sorted(allowed):
        if package not in state:
            visit(package, [package])


def test_every_import_follows_the_map() -> None:
    allowed = read_map(DOC.read_text())
    wrong = [
        f"{e.source}:{e.line}: {e.importer} imports {e.target}"
        for e in edges()
        if e.imported != e.importer and e.imported not in allowed.get(e.importer, set())
    ]
    assert wrong == [], "imports the map does not allow:\n" + "\n".join(wrong)


def test_the_map_allows_no_edge_that_does_not_exist() -> None:
    allowed = read_map(DOC.read_text())
    used: dict[str, set[str]] = {}
    for e in edges():
        if e.imported != e.importer:
            used.setdefault(e.importer, set()).add(e.imported)
    stale = {
        package: sorted(targets - used.get(package, set()))
        for package, targets in allowed.items()
        if package != ROOT_PACKAGE  # the facade imports by name (importlib) on first use
        and targets - used.get(package, set())
    }
    assert stale == {}, "the map allows imports that no module makes"


def test_no_package_imports_another_packages_private_modules() -> None:
    wrong = [
        f"{e.source}:{e.line}: {e.target}"
        for e in edges()
        if e.imported != e.importer and private_part(e.target) is not None
    ]
    assert wrong == [], "cross-package private imports:\n" + "\n".join(wrong)


def test_the_checks_catch_what_they_should() -> None:
    doc = f"{HEADING}\n\n| package | job | may import |\n|---|---|---|\n"
    doc += "| `a` | x | `b` |\n| `b` | y | — |\n\n## next\n| `c` | z | `a` |\n"
    assert read_map(doc) == {"a": {"b"}, "b": set()}
    assert private_part("modelyard.store._engine.SqlStore") == "_engine"
    assert private_part("modelyard.store.SqlStore") is None
    assert private_part("modelyard.store.__version__") is None
    assert package_of("modelyard") == ROOT_PACKAGE
    assert package_of("modelyard.cli.main") == "cli"
    assert package_of("modelyard.tune") == ROOT_PACKAGE
