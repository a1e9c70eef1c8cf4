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
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ollama_nb.testing.standin import StandinConfig, StandinServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

try:
    from playwright.sync_api import Request, Route, sync_playwright
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
    "<details open ontoggle=\"(window.__ran=window.__ran||[]).push('details')\">x</details>",
]
REPLY = (
    "# Safe heading\n\n"
    + "\n\n".join(f"- case {i}: {line}" for i, line in enumerate(HOSTILE))
    + "\n\nA [real link](https://docs.ollama.com/api).\n\n"
    "```python\ndef greet(name):\n    return 'hi ' + name\n```\n"
)
CELL = f"%%chat llama3.2\n<<reply>>{REPLY}<</reply>>"

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "load",
            "metadata": {},
            "outputs": [],
            "source": "%load_ext ollama_nb",
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "hostile",
            "metadata": {},
            "outputs": [],
            "source": CELL,
        },
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture
def lab(start_lab: Any) -> Iterator[str]:
    ollama = StandinServer(StandinConfig()).start()
    try:
        running = start_lab(ollama)
        (running.root / "hostile.ipynb").write_text(json.dumps(NOTEBOOK))
        yield f"{running.url}/lab/tree/hostile.ipynb?token={running.token}"
    finally:
        ollama.stop()


def test_a_hostile_reply_runs_nothing_loads_nothing_and_reads_as_text(lab: str) -> None:
    assert sync_playwright is not None
    ARTIFACTS.mkdir(exist_ok=True)
    lab_host = urlsplit(lab).netloc
    foreign: list[str] = []
    dialogs: list[str] = []

    def only_lab(route: Route, request: Request) -> None:
        if urlsplit(request.url).netloc == lab_host or request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            foreign.append(request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.route("**/*", only_lab)
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        output = (
            page.locator(".jp-Cell")
            .nth(1)
            .locator(".jp-OutputArea-output")
            .filter(has_text="Safe heading")
        )
        try:
            page.goto(lab)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_function(
                "() => document.body.innerText.includes('Python 3 (ipykernel) | Idle')",
                timeout=60_000,
            )
            page.locator(".jp-Cell .cm-content").first.click()
            page.keyboard.press("Shift+Enter")  # %load_ext
            page.keyboard.press("Shift+Enter")  # the hostile %%chat cell
            # The cell has finished when its prompt shows its execution count.
            page.locator(".jp-Cell").nth(1).locator(".jp-InputPrompt").filter(
                has_text="[2]"
            ).wait_for(timeout=60_000)
            output.wait_for(timeout=10_000)
            # Anything that would run has had its chance: an image errors at once, the
            # would-be links are clicked now (they are text: nothing happens).
            for name in ("click me", "raw anchor"):
                output.get_by_text(name, exact=False).first.click()
            page.evaluate(
                "() => new Promise(done => requestAnimationFrame(() => setTimeout(done)))"
            )
            ran = page.evaluate("() => window.__ran ?? null")
            happened = f"ran={ran} dialogs={dialogs} remote requests={foreign}"
            assert (ran, dialogs, foreign) == (None, [], []), happened

            text = output.inner_text()
            for visible in (
                "<img src=x onerror=",
                "<script>(window.__ran=window.__ran||[]).push('script');alert('script')</script>",
                "<iframe src=",
                "[click me](javascript:(window.__ran=window.__ran||[]).push('link'))",
                "<svg onload=",
                "tracking pixel",
            ):
                assert visible in text, f"{visible!r} is not visible in the output"
            dangerous = output.locator("img, script, iframe, svg, object, embed, style, form")
            assert dangerous.count() == 0
            hrefs = output.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
            assert all(h.startswith(("https://", "http://", "mailto:")) for h in hrefs), hrefs
            assert "https://docs.ollama.com/api" in hrefs
            # Markdown still renders: a heading, a list, and code highlighted in colour.
            assert output.locator("h1").inner_text() == "Safe heading"
            assert output.locator("li").count() == len(HOSTILE)
            coloured = output.locator("pre code span[style*='color']")
            assert coloured.count() >= 2
        finally:
            page.screenshot(path=str(ARTIFACTS / "hostile_chat.png"), full_page=True)
            browser.close()
