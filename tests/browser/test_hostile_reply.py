"""A hostile model reply in a ``%%chat`` cell, in JupyterLab in headless Chromium.

The stand-in is scripted (``<<reply>>…<</reply>>``) to answer with what a model that
read a hostile page could say: ``<img onerror>``, ``<script>``, ``<iframe>``,
``javascript:`` links, SVG with ``onload``, a Markdown image on a remote host. The cell's
output is trusted by JupyterLab (the user ran it), so only our rendering stands between
the reply and the page. The test asserts that nothing ran (no payload's ``window.__ran`` push happened, no
dialog opened), that the page asked no host but Lab's own, that the hostile text is
visible as text, and that Markdown and highlighted code still render. The screenshot
goes to ``artifacts/hostile_chat.png``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ollama_nb.testing.standin import StandinConfig, StandinServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

try:
    from playwright.sync_api import Dialog, Locator, Page, Request, Route, sync_playwright
except ModuleNotFoundError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (apt-get install chromium); CI installs it",
    ),
    pytest.mark.skipif(
        sync_playwright is None, reason="playwright is not installed (pip install playwright)"
    ),
]

#: Each hostile line, as the model says it (no braces: %%chat fills {names}).
HOSTILE = [
    "<img src=x onerror=\"(window.__ran=window.__ran||[]).push('img');alert('img')\">",
    "<script>(window.__ran=window.__ran||[]).push('script');alert('script')</script>",
    '<iframe src="https://evil.example/frame" onload="(window.__ran=window.__ran||[]).push(\'iframe\')"></iframe>',
    "[click me](javascript:(window.__ran=window.__ran||[]).push('link'))",
    '<svg onload="(window.__ran=window.__ran||[]).push(\'svg\')"><circle r="40"/></svg>',
    "![tracking pixel](https://evil.example/pixel.png)",
    "<a href=\"javascript:(window.__ran=window.__ran||[]).push('anchor')\">raw anchor</a>",
    "$\\href{javascript:(window.__ran=window.__ran||[]).push('mathjax')}{math link}$",
    "<details open ontoggle=\"(window.__ran=window.__ran||[]).push('details')\">x</details>",
]
REPLY = (
    "# Safe heading\n\n"
    + "\n\n".join(f"- case {i}: {line}" for i, line in enumerate(HOSTILE))
    + "\n\nA [real link](https://docs.ollama.com/api).\n\n"
    "```python\ndef greet(name):\n    return 'hi ' + name\n```\n"
)
CELL = f"%%chat llama3.2\n<<reply>>{REPLY}<</reply>>"


def notebook(*sources: str) -> dict[str, Any]:
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": f"cell{i}",
            "metadata": {},
            "outputs": [],
            "source": source,
        }
        for i, source in enumerate(sources)
    ]
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


NOTEBOOKS = {
    "hostile.ipynb": notebook("%load_ext ollama_nb", CELL),
    "panel.ipynb": notebook(
        "from ollama_nb.widgets import ChatPanel\npanel = ChatPanel(model='llama3.2')\npanel"
    ),
}


@pytest.fixture
def lab(start_lab: Any) -> Iterator[str]:
    """JupyterLab with both notebooks; yields the Lab's URL with ``{}`` for the notebook."""
    ollama = StandinServer(StandinConfig()).start()
    try:
        running = start_lab(ollama)
        for name, content in NOTEBOOKS.items():
            (running.root / name).write_text(json.dumps(content))
        yield f"{running.url}/lab/tree/{{}}?token={running.token}"
    finally:
        ollama.stop()


class Watch:
    """Everything the page did that a reply must never make it do."""

    def __init__(self, page: Page, lab_host: str) -> None:
        self.page = page
        self.lab_host = lab_host
        self.foreign: list[str] = []
        self.dialogs: list[str] = []
        page.route("**/*", self._only_lab)
        page.on("dialog", self._dialog)

    def _only_lab(self, route: Route, request: Request) -> None:
        if urlsplit(request.url).netloc == self.lab_host or request.url.startswith(
            ("data:", "blob:")
        ):
            route.continue_()
        else:
            self.foreign.append(request.url)
            route.abort()

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def assert_nothing_happened(self, shown: Locator) -> None:
        # Anything that would run has had its chance: an image errors at once, the
        # would-be links are clicked now (they are text: nothing happens).
        for name in ("click me", "raw anchor"):
            shown.get_by_text(name, exact=False).first.click()
        # Math is typeset by the front end's MathJax, whose own safe mode drops the
        # javascript: \href: the formula shows, carries no link, and a click does nothing.
        math = shown.locator("li").filter(has_text="case 7").locator("mjx-container")
        math.first.wait_for(timeout=30_000)
        assert math.locator("[href]").count() == 0
        for index in range(math.count()):
            math.nth(index).click()
        self.page.evaluate(
            "() => new Promise(done => requestAnimationFrame(() => setTimeout(done)))"
        )
        ran = self.page.evaluate("() => window.__ran ?? null")
        happened = f"ran={ran} dialogs={self.dialogs} remote requests={self.foreign}"
        assert (ran, self.dialogs, self.foreign) == (None, [], []), happened


def assert_readable_markdown(shown: Locator) -> None:
    """The hostile text is visible as text; Markdown and highlighted code still render."""
    text = shown.inner_text()
    for visible in (
        "<img src=x onerror=",
        "<script>(window.__ran=window.__ran||[]).push('script');alert('script')</script>",
        "<iframe src=",
        "[click me](javascript:(window.__ran=window.__ran||[]).push('link'))",
        "<svg onload=",
        "image: tracking pixel",
    ):
        assert visible in text, f"{visible!r} is not visible in the output"
    dangerous = shown.locator("img, script, iframe, svg, object, embed, style, form")
    assert dangerous.count() == 0
    hrefs = shown.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert all(h.startswith(("https://", "http://", "mailto:")) for h in hrefs), hrefs
    assert "https://docs.ollama.com/api" in hrefs
    assert shown.locator("h1").inner_text() == "Safe heading"
    assert shown.locator("li").count() == len(HOSTILE)
    assert shown.locator("pre code span[style*='color']").count() >= 2


def open_notebook(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(
        "() => document.body.innerText.includes('Python 3 (ipykernel) | Idle')",
        timeout=60_000,
    )
    page.locator(".jp-Cell .cm-content").first.click()


def browse(lab: str, screenshot: str, check: Callable[[Page, Watch], None]) -> None:
    assert sync_playwright is not None
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        watch = Watch(page, urlsplit(lab).netloc)
        try:
            check(page, watch)
        finally:
            page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
            browser.close()


def test_a_hostile_chat_cell_runs_nothing_loads_nothing_and_reads_as_text(lab: str) -> None:
    def check(page: Page, watch: Watch) -> None:
        open_notebook(page, lab.format("hostile.ipynb"))
        page.keyboard.press("Shift+Enter")  # %load_ext
        page.keyboard.press("Shift+Enter")  # the hostile %%chat cell
        # The cell has finished when its prompt shows its execution count.
        cell = page.locator(".jp-Cell").nth(1)
        cell.locator(".jp-InputPrompt").filter(has_text="[2]").wait_for(timeout=60_000)
        shown = cell.locator(".jp-OutputArea-output").filter(has_text="Safe heading")
        shown.wait_for(timeout=10_000)
        watch.assert_nothing_happened(shown)
        assert_readable_markdown(shown)

    browse(lab, "hostile_chat.png", check)


def test_a_hostile_reply_in_the_chat_panel_is_inert_too(lab: str) -> None:
    def check(page: Page, watch: Watch) -> None:
        open_notebook(page, lab.format("panel.ipynb"))
        page.keyboard.press("Shift+Enter")
        area = page.locator("textarea.ollama-nb-prompt")
        area.wait_for(timeout=60_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.ollama-nb-chat-panel select option')]"
            ".some(o => o.textContent.includes('llama3.2'))",
            timeout=30_000,
        )
        area.fill(f"<<reply>>{REPLY}<</reply>>")
        area.press("Shift+Enter")
        panel = page.locator(".ollama-nb-chat-panel")
        page.wait_for_function(
            "() => document.querySelector('.ollama-nb-chat-panel').innerText.includes('tok/s')",
            timeout=30_000,
        )
        answer = panel.locator(".jp-OutputArea-output").filter(has_text="Safe heading").last
        watch.assert_nothing_happened(panel)
        assert_readable_markdown(answer)
        answer.locator("pre").scroll_into_view_if_needed()  # the screenshot shows the answer

    browse(lab, "hostile_panel.png", check)
