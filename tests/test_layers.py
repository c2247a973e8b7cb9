"""Imports in src/joulelens flow one way: no cycle between modules, and no module imports a
higher layer than its own. Module-level and function-level imports count; imports under
``if TYPE_CHECKING:`` do not (they never run)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import joulelens

ROOT = Path(joulelens.__file__).parent
PACKAGE = ROOT.name

# Bottom to top. A module may import its own layer or a lower one; the groups sharing a layer
# may import each other (cycles between modules are refused separately). "" is the package's
# own __init__ (``__version__``).
LAYERS: list[set[str]] = [
    {"", "redact", "errors", "records", "core"},
    {"meters"},
    {"measure"},
    {"store"},  # persistence; below the runner, which writes a run where it finishes
    {"workloads", "ingest"},
    {"tasks"},
    {"engines"},
    {"runner"},
    {"analysis"},
    {"watch", "report"},
    {"api"},
    {"cli"},
]
RANK = {group: rank for rank, groups in enumerate(LAYERS) for group in groups}

# Stricter than the order, for any import at all (TYPE_CHECKING ones too): measure and meters
# are peers that never import each other; analysis explains
# stored records and never reads meters or engines; only the CLI starts the exporter (watch),
# which never renders reports.
NEVER = {
    "measure": {"meters"},  # peers: the runner hands the meters' readings to measurement
    "analysis": {"meters", "measure", "engines", "report", "cli"},
    "report": {"watch"},
    "api": {"watch"},
    "watch": {"report", "cli"},
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # path:line of the import

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}  ({self.where})"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, runtime_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if runtime_only and isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:  # the else branch does run
                yield from _imports(child, runtime_only)
                if isinstance(child, ast.Import | ast.ImportFrom):
                    yield child
            continue
        yield from _imports(node, runtime_only)


def _owner(name: str) -> str | None:
    """The module an imported name lives in: the longest prefix that is a module."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> Iterator[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            anchor = package[: len(package) - node.level + 1]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        # ``from pkg import mod`` imports the module; ``from pkg import name`` the package.
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    for name in names:
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            owner = _owner(name)
            if owner is not None and owner != module:
                yield owner


def _edges(runtime_only: bool = True) -> list[Edge]:
    edges = set()
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in _imports(tree, runtime_only):
            where = f"{path.relative_to(ROOT.parent)}:{node.lineno}"
            edges |= {Edge(module, t, where) for t in _targets(node, module, path)}
    return sorted(edges, key=lambda e: (e.source, e.target, e.where))


def _group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for e in edges:
        graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return sorted(found)


def test_every_sub_package_has_a_layer() -> None:
    assert sorted({_group(m) for m in MODULES} - set(RANK)) == []


def test_no_import_cycle_between_modules() -> None:
    edges = _edges()
    cycles = _cycles(edges)
    lines = []
    for members in cycles:
        inside = set(members)
        lines.append(" <-> ".join(members))
        lines += [f"    {e}" for e in edges if e.source in inside and e.target in inside]
    assert cycles == [], "import cycles:\n" + "\n".join(lines)


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{e}  [{_group(e.source) or PACKAGE} {RANK[_group(e.source)]} -> "
        f"{_group(e.target) or PACKAGE} {RANK[_group(e.target)]}]"
        for e in _edges()
        if RANK[_group(e.target)] > RANK[_group(e.source)]
    ]
    assert upward == [], "imports against the layer order:\n" + "\n".join(upward)


def test_the_stricter_rules_hold_for_every_import() -> None:
    forbidden = [
        str(e)
        for e in _edges(runtime_only=False)
        if _group(e.target) in NEVER.get(_group(e.source), set())
    ]
    assert forbidden == [], "forbidden imports:\n" + "\n".join(forbidden)


def test_the_graph_sees_every_kind_of_import() -> None:
    """Guards the analyser itself: each import form resolves to the module it loads."""
    edges = {(e.source, e.target) for e in _edges()}
    assert ("joulelens.cli.app", "joulelens") in edges  # the package's own __version__
    assert ("joulelens.api", "joulelens.runner") in edges  # from a package, a name
    assert ("joulelens.cli.diagnosis", "joulelens.analysis.related") in edges  # in a function
    assert ("joulelens.report.payload", "joulelens.report.numbers") in edges
    runtime = {(e.source, e.target) for e in _edges()}
    every = {(e.source, e.target) for e in _edges(runtime_only=False)}
    assert runtime < every  # TYPE_CHECKING imports exist and are left out of the order
