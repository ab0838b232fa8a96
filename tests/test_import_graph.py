"""No import circle among conformance's modules, deferred (in-function) imports included.

A circle is what made adding a spec mean reading the engine: the spec module imported the
declarations lazily, the declarations imported the spec module, and each new module had to
find its place in that loop. The catalog now lists the family modules, and this test keeps
every edge one way. Imports under `if TYPE_CHECKING:` never run and are not edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "conformance"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of the statements inside `if TYPE_CHECKING:` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """Module -> the conformance modules it imports (`from conformance import x` is an edge
    to conformance.x where x is a module: the package itself is already initialized then)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [t for t in submodules if t in modules] or [node.module]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_conformance_has_no_import_circle():
    assert circles(import_graph()) == []


def test_the_detector_sees_a_circle_through_a_deferred_import():
    graph = import_graph()
    graph["conformance.spec"].add("conformance.catalog")  # as get_spec's lazy import once was
    assert ["conformance.catalog", "conformance.spec"] in [
        [m for m in c if m in ("conformance.catalog", "conformance.spec")] for c in circles(graph)]


def test_the_catalog_lists_every_family_module():
    from conformance import catalog

    families = {p.stem for p in (PACKAGE / "specs").glob("*.py")} - {
        "__init__", "common", "transforms"}
    assert {module.__name__.rsplit(".", 1)[-1] for module in catalog.FAMILIES} == families
