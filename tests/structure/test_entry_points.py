"""``get_runtime()`` is called only where a user enters, and the README lists those places.

Past an entry point the runtime (or just the ``Ports`` a use case needs) is passed
in. A helper that fetched the process runtime itself would be a second way in:
it could not be given another runtime in a test, and a reader could not see
from a signature what it depends on. So every call must sit in a public function
or method (what a user calls: ``ollama_nb.chat``, ``df.ollama.chat``, a widget's
constructor, ``%load_ext``), or in one of the bootstraps named below that a
framework calls for the user.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ollama_nb"
#: Private by name, entered by a framework on the user's behalf.
BOOTSTRAPS = {
    "ollama_nb.dask.job._worker_runtime",  # a Dask worker's first partition
    "ollama_nb.quickstart._quickstart",  # ``python -m ollama_nb.quickstart`` (its ``main``)
}


def _calls() -> list[str]:
    """``module.qualname`` of every function that calls ``get_runtime()``."""
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if module == "ollama_nb.runtime":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found.extend(f"{module}.{name}" for name in _callers(tree))
    return found


def _callers(tree: ast.Module) -> list[str]:
    names: list[str] = []

    def visit(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                visit(child, [*scope, child.name])
                continue
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Name)
                and child.func.id == "get_runtime"
            ):
                names.append(".".join(scope) or "<module>")
            visit(child, scope)

    visit(tree, [])
    return names


def _is_entry(qualname: str) -> bool:
    """A public function, a public method of a public class, or a named bootstrap."""
    if qualname in BOOTSTRAPS:
        return True
    module = _module_of(qualname)
    inside = qualname[len(module) + 1 :].split(".") if module else qualname.split(".")
    steps = [p for p in inside if p != "__init__"]  # a constructor counts as its class
    return not any(p.startswith("_") for p in steps)


def test_get_runtime_only_at_entry_points() -> None:
    calls = _calls()
    assert calls, "the scan found no call at all: it is broken"
    deep = sorted({c for c in calls if not _is_entry(c)})
    assert deep == [], f"get_runtime() called past an entry point: {deep}"


def test_the_readme_lists_every_module_with_an_entry_point() -> None:
    readme = (PACKAGE / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Entry points", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(ollama_nb(?:\.\w+)+)`", section))
    owners = {_module_of(c) for c in _calls()}
    assert owners <= listed, f"entry modules missing from ollama_nb/README.md: {owners - listed}"


def _module_of(qualname: str) -> str:
    parts = qualname.split(".")
    while parts and not _is_module(".".join(parts)):
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / Path(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_the_check_refuses_a_private_helper() -> None:
    deep = "def _helper():\n    return get_runtime()\nclass A:\n    def _m(self):\n        get_runtime()\n"
    qualnames = [f"ollama_nb.api.{n}" for n in _callers(ast.parse(deep))]
    assert qualnames == ["ollama_nb.api._helper", "ollama_nb.api.A._m"]
    assert not any(_is_entry(q) for q in qualnames)
    entry = "def chat():\n    get_runtime()\nclass Panel:\n    def __init__(self):\n        get_runtime()\n"
    qualnames = [f"ollama_nb.api.{n}" for n in _callers(ast.parse(entry))]
    assert qualnames == ["ollama_nb.api.chat", "ollama_nb.api.Panel.__init__"]
    assert all(_is_entry(q) for q in qualnames)
