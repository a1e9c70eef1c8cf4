"""The package's import graph has no cycles, counting imports inside functions.

An import inside a function hides a cycle from Python's loader but not from the
next engineer: the two modules still cannot be understood, tested or moved
apart. So the graph here holds every import in a module (top level, functions,
methods, ``try`` blocks), with relative imports resolved, and leaves out only
``if TYPE_CHECKING:`` blocks, which never run. ``importlib.import_module`` with a
literal name counts too, and probing our own modules that way is refused
outright: they always ship, so they are imported directly and type-checked.

An edge goes to the module a statement names (``from .pkg import name`` points
at ``pkg.name`` when that is a module, else at ``pkg``) and to each package
Python initialises on the way there, since importing ``server.process`` runs
``server/__init__.py`` first. Packages the importing module already lives in
are left out: a package's ``__init__`` importing its own submodules, and those
importing their siblings, is how packages work, not a cycle.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "ollama_nb"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE


@dataclass(frozen=True, slots=True)
class Edge:
    target: str
    line: int


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that can run: ``if TYPE_CHECKING:`` bodies are skipped (their ``else`` is not)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: -(level - 1)]
    return ".".join([*base, name] if name else base)


def _ours(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    edges: list[Edge] = []

    def add(name: str, line: int) -> None:
        target = _ours(name, modules)
        if target is None:
            return
        parts = target.split(".")
        for depth in range(1, len(parts) + 1):
            step = ".".join(parts[:depth])
            mine = module == step or module.startswith(step + ".")
            if step in modules and not mine:
                edges.append(Edge(step, line))

    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node.level, node.module)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                add(submodule if submodule in modules else source, node.lineno)
        elif isinstance(node, ast.Call) and _literal_import_module(node) is not None:
            add(_literal_import_module(node) or "", node.lineno)
    return edges


def _literal_import_module(node: ast.Call) -> str | None:
    func = node.func
    named = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module"
    )
    if named and node.args and isinstance(node.args[0], ast.Constant):
        value = node.args[0].value
        return value if isinstance(value, str) else None
    return None


def import_graph() -> dict[str, dict[str, int]]:
    """Module -> {imported module: first line importing it}."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        targets: dict[str, int] = {}
        for edge in _imports(module, path, modules):
            targets.setdefault(edge.target, edge.line)
        graph[module] = targets
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's components with more than one module (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def shortest_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """One shortest cycle through the component's first module, as a closed path."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child == start:
                    return [*paths[node], start]
                if child in members and child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"{component} is not a cycle")


def describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    paths = _modules()
    steps = [
        f"    {a}  ->  {b}   ({paths[a].relative_to(ROOT.parent)} line {graph[a][b]})"
        for a, b in itertools.pairwise(cycle)
    ]
    return "\n".join(steps)


# --- the checker checks itself on a tiny graph ------------------------------------------------


def test_the_checker_finds_a_cycle_and_ignores_a_chain() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}, "e": {}}
    components = strongly_connected(graph)
    assert components == [["a", "b", "c"]]
    assert shortest_cycle(graph, components[0]) == ["a", "b", "c", "a"]
    assert strongly_connected({"a": {"b": 1}, "b": {}}) == []


def test_the_checker_reads_function_level_imports_and_skips_type_checking(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from .hidden import X\n"
        "def late():\n"
        "    from ..runtime import get_runtime\n"
        "    from . import sibling\n"
    )
    path = tmp_path / "mod.py"
    path.write_text(source, encoding="utf-8")
    modules = {
        "ollama_nb.pkg.mod": path,
        "ollama_nb.pkg.hidden": path,
        "ollama_nb.pkg.sibling": path,
        "ollama_nb.pkg": path,
        "ollama_nb.runtime": path,
    }
    targets = {edge.target for edge in _imports("ollama_nb.pkg.mod", path, modules)}
    assert targets == {"ollama_nb.runtime", "ollama_nb.pkg.sibling"}


def test_the_checker_counts_the_packages_an_import_initialises(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text("from ..other.leaf import X\nfrom .sibling import Y\n", encoding="utf-8")
    modules = {
        name: path
        for name in ("ollama_nb", "ollama_nb.pkg", "ollama_nb.pkg.mod", "ollama_nb.pkg.sibling")
    } | {"ollama_nb.other": path, "ollama_nb.other.leaf": path}
    targets = {edge.target for edge in _imports("ollama_nb.pkg.mod", path, modules)}
    assert targets == {"ollama_nb.other", "ollama_nb.other.leaf", "ollama_nb.pkg.sibling"}


# --- the package --------------------------------------------------------------------------------


def test_the_graph_sees_the_whole_package() -> None:
    graph = import_graph()
    assert len(graph) > 50
    assert "ollama_nb.runtime" in graph["ollama_nb.api"]


def test_no_import_cycles() -> None:
    graph = import_graph()
    components = strongly_connected(graph)
    if components:
        report = [
            f"{len(components)} import cycle(s) in {PACKAGE} (imports inside functions count):"
        ]
        for component in components:
            report.append(f"  among {', '.join(component)}:")
            report.append(describe(graph, shortest_cycle(graph, component)))
        pytest.fail("\n".join(report), pytrace=False)


def test_our_own_modules_are_imported_directly() -> None:
    """``importlib.import_module("ollama_nb...")`` hides a dependency from mypy and readers."""
    modules = _modules()
    probes = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _runtime_nodes(tree):
            if isinstance(node, ast.Call):
                name = _literal_import_module(node)
                if name is not None and _ours(name, modules) is not None:
                    probes.append(f"{module} line {node.lineno}: import_module({name!r})")
    assert probes == []


# --- between parts --------------------------------------------------------------------------------
#
# A part is a top-level module or subpackage of the package (``domain``, ``notebook``,
# ``runtime``, ``api`` ...). Module-level acyclicity still lets two parts lean on each other
# through different modules (``widgets.chat_panel`` -> ``notebook.magics`` while
# ``notebook.panel_commands`` -> ``widgets``), and then neither part can be read, tested or
# moved without the other. So parts must form a graph without cycles too.


def part_of(module: str) -> str:
    """``ollama_nb.notebook.magics`` -> ``notebook``; the package's own ``__init__`` is ``ollama_nb``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def part_graph(graph: dict[str, dict[str, int]]) -> dict[str, dict[str, tuple[str, str, int]]]:
    """Part -> {imported part: (importing module, imported module, line)}, first edge found."""
    parts: dict[str, dict[str, tuple[str, str, int]]] = {}
    for module in sorted(graph):
        source = part_of(module)
        targets = parts.setdefault(source, {})
        for target, line in sorted(graph[module].items()):
            other = part_of(target)
            if other != source:
                targets.setdefault(other, (module, target, line))
    return parts


def test_the_part_graph_folds_modules_into_their_parts() -> None:
    graph = {
        "ollama_nb.notebook.magics": {"ollama_nb.presentation.display": 3},
        "ollama_nb.notebook.state": {"ollama_nb.notebook.magics": 1},
        "ollama_nb.widgets.panel": {"ollama_nb.notebook.state": 5},
        "ollama_nb.presentation.display": {},
        "ollama_nb.api": {"ollama_nb.widgets.panel": 2},
    }
    parts = part_graph(graph)
    assert parts["widgets"] == {
        "notebook": ("ollama_nb.widgets.panel", "ollama_nb.notebook.state", 5)
    }
    assert set(parts["notebook"]) == {"presentation"}
    assert set(parts["api"]) == {"widgets"}
    assert strongly_connected({p: dict.fromkeys(t, 0) for p, t in parts.items()}) == []
    graph["ollama_nb.presentation.display"] = {"ollama_nb.widgets.panel": 9}
    cycle_parts = part_graph(graph)
    components = strongly_connected({p: dict.fromkeys(t, 0) for p, t in cycle_parts.items()})
    assert components == [["notebook", "presentation", "widgets"]]


def test_no_cycles_between_parts() -> None:
    parts = part_graph(import_graph())
    assert {"domain", "application", "runtime", "notebook", "widgets"} <= set(parts)
    simple = {part: dict.fromkeys(targets, 0) for part, targets in parts.items()}
    components = strongly_connected(simple)
    if components:
        report = [f"{len(components)} cycle(s) between parts of {PACKAGE}:"]
        for component in components:
            cycle = shortest_cycle(simple, component)
            report.append(f"  among {', '.join(component)}:")
            for a, b in itertools.pairwise(cycle):
                module, target, line = parts[a][b]
                report.append(f"    {a} -> {b}   ({module} line {line} imports {target})")
        pytest.fail("\n".join(report), pytrace=False)
