"""The measures of a core a reader can hold in mind (issue 13), kept true as code lands.

No module over 400 lines, no function over 60; the two functions every request goes
through (putting the token on, resending a 401) under cyclomatic complexity 10; at most
five ``type: ignore`` in the package and five in the testing kit, counted apart; no
read or write of requests' private ``_store``, ``_content`` or ``_content_consumed``;
no import cycle between the package's modules; and the credentials, which another HTTP
library's glue is to share, import nothing of requests themselves.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import requests_criteo

PACKAGE = Path(requests_criteo.__file__).parent
TESTING = PACKAGE / "testing"

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_COMPLEXITY = 9  # "under 10"
MAX_TYPE_IGNORES = 5


def modules(root: Path = PACKAGE) -> list[Path]:
    return sorted(root.rglob("*.py"))


def package_modules() -> list[Path]:
    return [p for p in modules() if TESTING not in p.parents]


def functions(path: Path) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def complexity(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """McCabe's number: one, plus one per branch point (and per extra operand of and/or)."""
    branches = 0
    for node in ast.walk(function):
        if isinstance(node, (ast.If, ast.IfExp, ast.For, ast.While, ast.ExceptHandler)):
            branches += 1
        elif isinstance(node, ast.BoolOp):
            branches += len(node.values) - 1
        elif isinstance(node, ast.comprehension):
            branches += 1 + len(node.ifs)
    return 1 + branches


def relative_imports(path: Path) -> set[str]:
    """The package modules *path* imports at run time (``TYPE_CHECKING`` blocks left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    package = path.parent.relative_to(PACKAGE.parent).as_posix().replace("/", ".")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level and id(node) not in typing_only:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
            if node.module:  # "from . import x" imports x, not the package again
                found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def module_name(path: Path) -> str:
    name = path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")
    return name.removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in modules()}
    return {name: relative_imports(path) & set(paths) - {name} for name, path in paths.items()}


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_module_is_over_400_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_MODULE_LINES


def test_no_function_is_over_60_lines() -> None:
    long = [
        f"{path.relative_to(PACKAGE)}:{f.name} ({f.end_lineno - f.lineno + 1} lines)"
        for path in modules()
        for f in functions(path)
        if f.end_lineno is not None and f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


@pytest.mark.parametrize(
    ("module", "function"), [("auth.py", "apply"), ("_request_path.py", "resend_once")]
)
def test_the_request_path_stays_simple(module: str, function: str) -> None:
    (found,) = [f for f in functions(PACKAGE / module) if f.name == function]
    assert complexity(found) <= MAX_COMPLEXITY


@pytest.mark.parametrize("root", ["package", "testing"])
def test_at_most_five_type_ignores(root: str) -> None:
    paths = package_modules() if root == "package" else modules(TESTING)
    count = sum(p.read_text(encoding="utf-8").count("type: ignore") for p in paths)
    assert count <= MAX_TYPE_IGNORES


def test_no_private_state_of_requests_is_read_or_written() -> None:
    private = re.compile(r"\._(store|content|content_consumed)\b")
    hits = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in modules()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if private.search(line)
    ]
    assert hits == []


def test_no_import_cycle_between_the_package_modules() -> None:
    graph = import_graph()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, (*path, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


def test_the_credentials_import_nothing_of_requests() -> None:
    """Its exceptions are requests' RequestException subclasses, by the public contract."""
    graph = import_graph()
    seen, todo = set(), ["requests_criteo._credentials"]
    while todo:
        name = todo.pop()
        if name not in seen and name != "requests_criteo.exceptions":
            seen.add(name)
            todo.extend(graph[name])
    importing = [
        name
        for name in sorted(seen)
        if re.search(r"^(import|from) requests\b", _source_of(name), re.MULTILINE)
    ]
    assert importing == []


def _source_of(name: str) -> str:
    path = PACKAGE.parent / (name.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / name.replace(".", "/") / "__init__.py"
    return path.read_text(encoding="utf-8")
