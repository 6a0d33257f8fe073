"""The shape of the package, checked from its source: no import cycles, and rooms that import
only what their place in the layering allows (see docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "service" / "routeiq"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module this file imports, wherever the import statement is (functions included:
    a deferred import is still a dependency)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"{path}: relative import; the package uses absolute imports")
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_inside_the_package() -> None:
    graph = _graph()
    assert len(graph) > 40  # the walk found the package
    assert _cycles(graph) == []


# What each room may not import: lower rooms never reach up. decision/ is pure (no web
# framework, no Redis, no ONNX runtime); state/ and inference/ know nothing of HTTP.
FORBIDDEN = {
    "routeiq.decision": ("fastapi", "starlette", "redis", "onnxruntime", "routeiq.http", "routeiq.state",
                         "routeiq.engine", "routeiq.pipeline", "routeiq.snapshot", "routeiq.settings"),
    "routeiq.state": ("fastapi", "starlette", "routeiq.http", "routeiq.engine", "routeiq.pipeline"),
    "routeiq.inference": ("fastapi", "starlette", "routeiq.http", "routeiq.engine", "routeiq.pipeline",
                          "routeiq.state"),
    "routeiq.trained": ("fastapi", "starlette", "redis", "routeiq.http", "routeiq.engine", "routeiq.state"),
    "routeiq.artifacts": ("fastapi", "starlette", "redis", "routeiq.decision", "routeiq.http"),
    "routeiq.observability": ("fastapi", "redis", "routeiq.engine", "routeiq.pipeline", "routeiq.http"),
}  # fmt: skip


def test_rooms_import_only_downwards() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        for room, banned in FORBIDDEN.items():
            if name == room or name.startswith(room + "."):
                for imported in _imports(path):
                    if any(imported == b or imported.startswith(b + ".") for b in banned):
                        problems.append(f"{name} imports {imported}")
    assert problems == []
