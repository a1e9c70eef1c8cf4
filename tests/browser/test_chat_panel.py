"""The ChatPanel in a real browser: JupyterLab on loopback, headless Debian Chromium.

A notebook shows ``ChatPanel``; the test types a prompt in the panel's own input,
sends it with Shift+Enter (the anywidget key handler), and waits for the
stand-in's streamed reply in the transcript. Playwright drives Debian's
``/usr/bin/chromium`` through ``executable_path`` (``playwright install`` is never
used). The screenshot goes to ``artifacts/chat_panel.png``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ollama_nb.testing.standin import StandinConfig, StandinServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PROMPT = "hello from the browser"

try:
    from playwright.sync_api import sync_playwright
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

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "panel",
            "metadata": {},
            "outputs": [],
            "source": "from ollama_nb.widgets import ChatPanel\npanel = ChatPanel(model='llama3.2')\npanel",
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture
def lab(start_lab: Any) -> Iterator[str]:
    """JupyterLab with a notebook showing the panel; yields the notebook's URL."""
    ollama = StandinServer(StandinConfig(tokens_per_second=30.0)).start()
    try:
        running = start_lab(ollama)
        (running.root / "panel.ipynb").write_text(json.dumps(NOTEBOOK))
        yield f"{running.url}/lab/tree/panel.ipynb?token={running.token}"
    finally:
        ollama.stop()


def test_the_chat_panel_streams_a_reply_in_jupyterlab(lab: str) -> None:
    assert sync_playwright is not None
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.goto(lab)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            # The kernel must be connected before the cell runs, or Shift+Enter only moves on.
            page.wait_for_function(
                "() => document.body.innerText.includes('Python 3 (ipykernel) | Idle')",
                timeout=60_000,
            )
            page.locator(".jp-Cell .cm-content").first.click()
            page.keyboard.press("Shift+Enter")
            area = page.locator("textarea.ollama-nb-prompt")
            area.wait_for(timeout=60_000)
            panel = page.locator(".ollama-nb-chat-panel")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.ollama-nb-chat-panel select option')]"
                ".some(o => o.textContent.includes('llama3.2'))",
                timeout=30_000,
            )
            area.click()
            area.fill(PROMPT)
            area.press("Shift+Enter")
            page.wait_for_function(
                "text => document.querySelector('.ollama-nb-chat-panel').innerText.includes(text)",
                arg=f'You said: "{PROMPT}"',
                timeout=30_000,
            )
            page.wait_for_function(
                "() => document.querySelector('.ollama-nb-chat-panel').innerText.includes('tok/s')",
                timeout=30_000,
            )
            text = panel.inner_text()
            assert "llama3.2" in text and "TTFT" in text
            assert area.input_value() == ""  # sent, not run as a cell
        finally:
            page.screenshot(path=str(ARTIFACTS / "chat_panel.png"), full_page=True)
            browser.close()
