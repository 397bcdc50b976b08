"""The package's modules import one another without a cycle.

Edges are the imports run when a module is imported: its top-level imports (also inside
``try``/``if`` blocks, but not under ``if TYPE_CHECKING:``); imports inside functions run
later and are left out. ``from pkg import name`` depends on the submodule ``pkg.name``
when there is one, else on ``pkg`` itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import qa_service

ROOT = Path(qa_service.__file__).parent


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    for node in body:
        if isinstance(node, ast.If):
            test = node.test
            named = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if named == "TYPE_CHECKING":
                continue
            yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _top_level(block)
            for handler in node.handlers:
                yield from _top_level(handler.body)
        else:
            yield node


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports when it is imported."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _top_level(ast.parse(path.read_text(encoding="utf-8")).body):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    stem = ".".join([*base, node.module] if node.module else base)
                else:
                    stem = node.module or ""
                targets = [
                    f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in files else stem
                    for alias in node.names
                ]
            for target in targets:
                if target in files and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as the modules along it (None: there is none)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(ROOT)
    assert "qa_service.query.pipeline" in graph
    assert "qa_service.query.fusion" in graph["qa_service.query.candidates"]
    assert find_cycle(graph) is None


def _package(root: Path, modules: dict[str, str]) -> Path:
    package = root / "pkg"
    package.mkdir()
    for name, text in modules.items():
        (package / f"{name}.py").write_text(text, encoding="utf-8")
    return package


@pytest.mark.parametrize(
    ("modules", "cycle"),
    [
        (
            {
                "__init__": "",
                "a": "from .b import x\n",
                "b": "from . import c\n",
                "c": "import pkg.a\n",
            },
            ["pkg.a", "pkg.b", "pkg.c", "pkg.a"],
        ),
        # The package's own __init__ importing a module that needs the package.
        (
            {"__init__": "from .a import x\nVERSION = 1\n", "a": "from . import VERSION\n"},
            ["pkg", "pkg.a", "pkg"],
        ),
        # A package importing its own modules is no cycle.
        ({"__init__": "from .a import x\n", "a": "from .b import x\n", "b": "x = 1\n"}, None),
        # Imports inside functions and under TYPE_CHECKING run no cycle.
        (
            {
                "__init__": "",
                "a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import y\n",
                "b": "def f():\n    from .a import z\nfrom .a import w\n",
            },
            None,
        ),
    ],
)
def test_find_cycle(tmp_path: Path, modules: dict[str, str], cycle: list[str] | None) -> None:
    assert find_cycle(import_graph(_package(tmp_path, modules))) == cycle
