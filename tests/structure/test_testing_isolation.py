"""Nothing a user runs imports ``ollama_nb.testing``: test doubles build on production code.

Every module of the package outside ``ollama_nb/testing/`` is parsed with ``ast``; every
import it can make (at module level or inside a function, absolute or relative, and
``importlib.import_module`` with a literal name) is resolved to an absolute module name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import ollama_nb

PACKAGE_DIR = Path(ollama_nb.__file__).parent
FORBIDDEN = "ollama_nb.testing"


def module_name(path: Path, root: Path) -> str:
    """``root/ollama_nb/a/b.py`` -> ``ollama_nb.a.b`` (``__init__`` names its package)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` reads from, relative levels included."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """``(line, absolute module)`` for every import anywhere in the file."""
    module = module_name(path, root)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(node, module, is_package)
            yield node.lineno, source
            for alias in node.names:  # ``from ollama_nb import testing`` imports a module
                yield node.lineno, f"{source}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def offenders(root: Path) -> list[str]:
    """``file:line imports module`` for every import of the testing package from outside it."""
    found: list[str] = []
    testing_dir = root / "testing"
    for path in sorted(root.rglob("*.py")):
        if testing_dir in path.parents:
            continue
        seen_lines: set[int] = set()
        for line, target in imported_modules(path, root):
            forbidden = target == FORBIDDEN or target.startswith(FORBIDDEN + ".")
            if forbidden and line not in seen_lines:  # one report per import statement
                seen_lines.add(line)
                found.append(f"{path.relative_to(root.parent)}:{line} imports {target}")
    return found


def test_no_module_outside_testing_imports_it() -> None:
    assert offenders(PACKAGE_DIR) == []


def test_the_scan_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself can fail: each spelling of the forbidden import is caught."""
    package = tmp_path / "ollama_nb"
    (package / "testing" / "standin").mkdir(parents=True)
    (package / "embedded").mkdir()
    (package / "testing" / "__init__.py").write_text("from .standin import x\n")
    (package / "embedded" / "__init__.py").write_text("")
    (package / "embedded" / "server.py").write_text(
        "import os\n"
        "from ..testing.standin.server import StandinServer\n"
        "def build():\n"
        "    from ollama_nb.testing import StandinConfig\n"
        "    import ollama_nb.testing.standin\n"
        "    import importlib\n"
        "    importlib.import_module('ollama_nb.testing.pytest_plugin')\n"
    )
    (package / "embedded" / "__init__.py").write_text("from .. import testing\n")
    (package / "fine.py").write_text("from .embedded import server\nfrom . import testingx\n")
    assert offenders(package) == [
        "ollama_nb/embedded/__init__.py:1 imports ollama_nb.testing",
        "ollama_nb/embedded/server.py:2 imports ollama_nb.testing.standin.server",
        "ollama_nb/embedded/server.py:4 imports ollama_nb.testing",
        "ollama_nb/embedded/server.py:5 imports ollama_nb.testing.standin",
        "ollama_nb/embedded/server.py:7 imports ollama_nb.testing.pytest_plugin",
    ]


@pytest.mark.parametrize(
    ("file", "level", "module", "expected"),
    [
        ("ollama_nb/embedded/server.py", 1, "models", "ollama_nb.embedded.models"),
        ("ollama_nb/embedded/server.py", 2, "testing", "ollama_nb.testing"),
        ("ollama_nb/embedded/__init__.py", 1, "server", "ollama_nb.embedded.server"),
        ("ollama_nb/embedded/__init__.py", 2, None, "ollama_nb"),
    ],
)
def test_relative_imports_resolve_like_python(
    tmp_path: Path, file: str, level: int, module: str | None, expected: str
) -> None:
    path = tmp_path / file
    node = ast.ImportFrom(module=module, names=[], level=level)
    name = module_name(path, tmp_path / "ollama_nb")
    assert _resolve(node, name, path.name == "__init__.py") == expected
