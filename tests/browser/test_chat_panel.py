"""The ChatPanel in a real browser: JupyterLab on loopback, headless Debian Chromium.

A notebook shows ``ChatPanel``; the test types a prompt in the panel's own input,
sends it with Shift+Enter (the anywidget key handler), and waits for the
stand-in's streamed reply in the transcript. Playwright drives Debian's
``/usr/bin/chromium`` through ``executable_path`` (``playwright install`` is never
used). The screenshot goes to ``artifacts/chat_panel.png``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab with a notebook showing the panel; yields the notebook's URL."""
    ollama = StandinServer(StandinConfig(tokens_per_second=30.0)).start()
    root = tmp_path / "root"
    root.mkdir()
    (root / "panel.ipynb").write_text(json.dumps(NOTEBOOK))
    settings = tmp_path / "app-settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(
        json.dumps(
            {
                "@jupyterlab/apputils-extension:notification": {
                    "checkForUpdates": False,
                    "fetchNews": "false",
                }
            }
        )
    )
    for name in ("workspaces", "user-settings", "data", "runtime", "config"):
        (tmp_path / name).mkdir()
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "OLLAMA_HOST": ollama.host,
        "OLLAMA_NB_DATA_DIR": str(tmp_path / "data"),
        "OLLAMA_NB_RETRY_ATTEMPTS": "0",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    env.pop("OLLAMA_NB_HOST", None)
    log = tmp_path / "lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={port}",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
                f"--LabApp.user_settings_dir={tmp_path / 'user-settings'}",
                f"--LabApp.app_settings_dir={settings}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited early:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/api/status?token={token}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield f"{base}/lab/tree/panel.ipynb?token={token}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
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
