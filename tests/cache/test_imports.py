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
