"""Every surface shows untrusted text through ``ollama_nb.presentation.replies``.

JupyterLab renders an executed cell's ``text/markdown`` and ``text/html`` without
sanitising them, so one surface that publishes a reply its own way re-opens the hole
that let ``<img onerror>`` in a reply run JavaScript. The package is parsed with
``ast`` and these must hold:

- nothing publishes ``text/markdown`` (the front end would render raw HTML in it);
- nothing defines ``_repr_markdown_`` (IPython would publish it as Markdown);
- only ``presentation/replies.py`` turns a DataFrame into HTML (pandas' ``to_html``)
  or imports the Markdown renderer and the sanitiser;
- a literal ``"text/html"`` bundle or a ``_repr_html_`` outside ``presentation/``
  appears only in the files listed below, each of which draws untrusted values through
  ``presentation.replies`` (checked: the file imports it) or shows none.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import ollama_nb

PACKAGE = Path(ollama_nb.__file__).parent
REPLIES = PACKAGE / "presentation" / "replies.py"

#: Files outside presentation/ that build an HTML bundle or a ``_repr_html_``, and why.
HTML_OUTSIDE_PRESENTATION = {
    # image thumbnails of the user's own images (base64 PNG made by Pillow): no reply text
    "notebook/magics.py": False,
    # pull progress: the server's status line and digests go through replies.inline_html
    "notebook/core_commands.py": True,
    # compare summary table: replies.frame_html
    "batch/comparison.py": True,
    # performance report tables: replies.frame_html
    "telemetry/performance.py": True,
    # chat panel transcript: every entry is a replies.reply_bundle
    "widgets/chat_panel.py": True,
}


def package_files() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("testing/"):
            continue  # the stand-in serves replies; it shows nothing in a notebook
        yield relative, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def strings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_nothing_publishes_markdown() -> None:
    offenders = [
        f"{path}:{line}"
        for path, tree in package_files()
        for line, value in strings(tree)
        if value == "text/markdown"
    ]
    assert offenders == [], "publish replies with presentation.replies.reply_bundle"


def test_nothing_defines_repr_markdown() -> None:
    offenders = [
        f"{path}:{node.lineno}"
        for path, tree in package_files()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "_repr_markdown_"
    ]
    assert offenders == []


def test_only_replies_renders_frames_markdown_and_sanitises() -> None:
    offenders = []
    for path, tree in package_files():
        if path == "presentation/replies.py":
            continue
        for node in ast.walk(tree):
            call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if call and node.func.attr == "to_html" and not _is_own_method(node):  # type: ignore[union-attr]
                offenders.append(f"{path}:{node.lineno} .to_html(")
        for module in imports(tree):
            if module.split(".")[0] in {"markdown_it", "mdit_py_plugins", "nh3", "bleach"}:
                offenders.append(f"{path} imports {module}")
    assert offenders == []


def _is_own_method(node: ast.Call) -> bool:
    """``report.to_html(path)`` (our report saving itself) is not pandas' renderer."""
    target = node.func
    return (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and (target.value.id in {"self", "report"})
    )


def test_html_outside_presentation_is_listed_and_goes_through_replies() -> None:
    found: dict[str, bool] = {}
    for path, tree in package_files():
        if path.startswith("presentation/"):
            continue
        builds_html = any(value == "text/html" for _, value in strings(tree)) or any(
            isinstance(node, ast.FunctionDef) and node.name == "_repr_html_"
            for node in ast.walk(tree)
        )
        if builds_html:
            found[path] = any(m.endswith("presentation.replies") for m in imports(tree))
    assert set(found) == set(HTML_OUTSIDE_PRESENTATION), "list a new HTML surface here, with why"
    for path, needs_replies in HTML_OUTSIDE_PRESENTATION.items():
        if needs_replies:
            assert found[path], f"{path} shows untrusted text but does not use replies"


def test_the_rule_catches_a_surface_that_forgets(tmp_path: Path) -> None:
    """The checks above fail on the code that caused the bug."""
    bad = ast.parse(
        "def show(reply):\n"
        "    display({'text/markdown': reply.text}, raw=True)\n"
        "class R:\n"
        "    def _repr_markdown_(self):\n"
        "        return self.text\n"
    )
    assert any(value == "text/markdown" for _, value in strings(bad))
    assert any(
        isinstance(n, ast.FunctionDef) and n.name == "_repr_markdown_" for n in ast.walk(bad)
    )
