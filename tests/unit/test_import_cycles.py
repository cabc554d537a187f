"""No import cycle among the project's own modules, counting imports inside functions too: a cycle
hidden behind a function-level import (neonize_worker <-> neonize_groups was one) works until someone
moves the import, and it ties two modules that should each stand alone. Imports are read from the
source (ast), so no module is executed (the neonize ones load Go when imported)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import PROJECT_DIR

PACKAGES = ("chalicelib", "session_host", "local_gateway")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (PROJECT_DIR / package).rglob("*.py"):
            name = ".".join(path.relative_to(PROJECT_DIR).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its body (`from a import b` counts a.b when
    b is a module)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.update(c for c in [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                                if c in modules)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names if a.name in modules)
        graph[name] = imported - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_checker_sees_a_cycle_hidden_in_a_function():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_the_project():
    modules = _modules()
    assert "session_host.drivers.neonize_worker" in modules and "chalicelib.core.ops" in modules
    assert _cycles(_graph(modules)) == []
