"""salescast.cache stands alone: it imports nothing else of salescast, and no forbidden command."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import salescast.cache

PACKAGE = Path(salescast.cache.__file__).parent


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_cache_package_imports_nothing_else_of_salescast() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for name in _imported_modules(path)
        if name.startswith("salescast.") and not name.startswith("salescast.cache")
    ]
    assert list(PACKAGE.rglob("*.py")), "the walk found no modules"
    assert offenders == []


def test_cache_package_never_names_server_wide_deletes_or_key_listing() -> None:
    forbidden = re.compile(r"flushdb|flushall|\.keys\(", re.IGNORECASE)
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if forbidden.search(line)
    ]
    assert offenders == []


def test_cache_package_never_uses_pickle() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if any(
            name.split(".")[0] in {"pickle", "dill", "cloudpickle"}
            for name in _imported_modules(path)
        )
    ]
    assert offenders == []


def _module_name(path: Path) -> str:
    parts = ("salescast", "cache", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_cache_modules_import_each_other_without_a_circle() -> None:
    # Every import counts, those under ``if TYPE_CHECKING:`` too: a circle
    # hidden from the interpreter is still a circle for the reader.
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {
        name: {
            imported
            for imported in _imported_modules(path)
            if imported in modules and imported != name
        }
        for name, path in modules.items()
        if name != "salescast.cache"  # the package re-exports everything
    }
    assert "salescast.cache.tiered" in graph
    circles: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            circles.append([*path[path.index(name) :], name])
            return
        if name in done or name not in graph:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert circles == []


def test_no_cache_module_imports_the_package_itself() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "__init__.py" and "salescast.cache" in _imported_modules(path)
    ]
    assert offenders == []
