#!/usr/bin/env python3
"""The project's own import graph: circles, lazy imports, private names imported across modules.

    python scripts/import_graph.py            # circles (top-level and with lazy imports), sizes
    python scripts/import_graph.py --json     # the same as JSON (tests/test_architecture.py reads it)

An import is *lazy* when it sits inside a function (it runs when the function is called, not when
the module is loaded). A circle of top-level imports can break at start-up; a circle closed by a
lazy import works but ties the modules together all the same, so both are reported. Modules are
the project's packages (models, admin, jobs, pdf) and top-level modules (app, cli, config, demo);
tests, migrations, bench and scripts are left out.
"""
from __future__ import annotations

import ast
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "admin", "jobs", "pdf")
TOP_MODULES = ("app", "cli", "config", "demo", "cache", "spreadsheets")


@dataclass
class Edge:
    source: str
    target: str
    lazy: bool
    line: int
    names: tuple[str, ...] = field(default=())


def module_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
    for name in TOP_MODULES:
        if (ROOT / f"{name}.py").exists():
            files[name] = ROOT / f"{name}.py"
    return files


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def _own(name: str, files: dict[str, Path]) -> str | None:
    """The project module `name` refers to (the longest known prefix)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in files:
            return candidate
        parts.pop()
    return None


def edges(files: dict[str, Path] | None = None) -> list[Edge]:
    files = files or module_files()
    found: list[Edge] = []
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _own(alias.name, files)
                    if target and target != module:
                        found.append(Edge(module, target, id(node) not in top_level and not _guarded(tree, node),
                                          node.lineno))
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node.level, node.module)
                lazy = id(node) not in top_level and not _guarded(tree, node)
                for alias in node.names:
                    # `from package import module` imports the submodule; else the name's module
                    target = _own(f"{base}.{alias.name}", files) if f"{base}.{alias.name}" in files else _own(base, files)
                    if target and target != module:
                        found.append(Edge(module, target, lazy, node.lineno, (alias.name,)))
    return found


def _guarded(tree: ast.Module, node: ast.AST) -> bool:
    """An import under a top-level `if TYPE_CHECKING:` or `try:` still runs at load time
    (TYPE_CHECKING ones never run: those are left out by `typing_only`)."""
    for statement in tree.body:
        if isinstance(statement, (ast.If, ast.Try)) and any(child is node for child in ast.walk(statement)):
            return True
    return False


def typing_only(tree: ast.Module) -> set[int]:
    ids: set[int] = set()
    for statement in tree.body:
        if isinstance(statement, ast.If) and "TYPE_CHECKING" in ast.unparse(statement.test):
            ids |= {id(child) for child in ast.walk(statement)}
    return ids


def circles(found: list[Edge], include_lazy: bool) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for edge in found:
        if include_lazy or not edge.lazy:
            graph.setdefault(edge.source, set()).add(edge.target)
            graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(result, key=lambda c: (-len(c), c))


def private_imports(found: list[Edge]) -> list[Edge]:
    """`from x import _name` across modules (a module's private helper used by another)."""
    return [e for e in found if any(n.startswith("_") and not n.startswith("__") for n in e.names)]


def sizes(files: dict[str, Path] | None = None) -> list[tuple[str, int]]:
    files = files or module_files()
    return sorted(((m, sum(1 for _ in p.open(encoding="utf-8"))) for m, p in files.items()),
                  key=lambda item: -item[1])


def report() -> dict:
    files = module_files()
    found = edges(files)
    return {
        "circles_top_level": circles(found, include_lazy=False),
        "circles_with_lazy": circles(found, include_lazy=True),
        "lazy_imports": [(e.source, e.target, e.line) for e in found if e.lazy],
        "private_imports": [(e.source, e.target, e.line, e.names) for e in private_imports(found)],
        "largest": sizes(files)[:12],
    }


def main() -> None:
    data = report()
    if "--json" in sys.argv:
        print(json.dumps(data, indent=1))
        return
    for key in ("circles_top_level", "circles_with_lazy"):
        print(f"{key}: {len(data[key])}")
        for circle in data[key]:
            print(f"  ({len(circle)}) " + " ".join(circle))
    print(f"lazy imports: {len(data['lazy_imports'])}")
    print(f"private names imported across modules: {len(data['private_imports'])}")
    for source, target, line, names in data["private_imports"]:
        print(f"  {source}:{line} <- {target} {', '.join(names)}")
    print("largest modules (lines):")
    for module, lines in data["largest"]:
        print(f"  {lines:5d} {module}")


if __name__ == "__main__":
    main()
