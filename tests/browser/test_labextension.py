"""JupyterLab in a real browser: the status bar item and the sidebar, end to end.

JupyterLab is started on loopback with our server extension and the prebuilt
lab extension from this tree (``ollama_nb/labextension``, built by
``npm --prefix labextension run build:prod`` or by building the wheel), in front
of a stand-in Ollama. Debian's Chromium is driven by Playwright through
``executable_path``: ``playwright install`` downloads browsers and is never used.
Screenshots go to ``artifacts/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ollama_nb.testing.standin import StandinServer

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "ollama_nb" / "labextension"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
POLL_S = 1

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (apt-get install chromium); CI installs it",
)


@dataclass
class Lab:
    url: str
    token: str
    ollama: StandinServer
    log: Path


@pytest.fixture
def lab(tmp_path: Path, start_lab: Any) -> Iterator[Lab]:
    if not (BUILT / "package.json").exists():
        pytest.fail(
            "The lab extension is not built: run `npm --prefix labextension ci && "
            "npm --prefix labextension run build:prod` (or build the wheel) first."
        )
    ollama = StandinServer().start()
    try:
        # Lab finds the extension by its package name under a labextensions folder.
        extensions = tmp_path / "labextensions"
        extensions.mkdir()
        (extensions / "ollama_nb").symlink_to(BUILT, target_is_directory=True)
        running = start_lab(
            ollama,
            settings={"ollama_nb:plugin": {"pollInterval": POLL_S}},
            server_config={
                "ServerApp": {"jpserver_extensions": {"ollama_nb.jupyter_server_ext": True}}
            },
            env={"OLLAMA_NB_DEFAULT_MODEL": "llama3.2"},
            args=[f"--LabApp.extra_labextensions_path={extensions}"],
        )
        yield Lab(running.url, running.token, ollama, running.log)
    finally:
        ollama.stop()


def test_status_bar_and_sidebar_follow_the_server(lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 850})
            page.goto(f"{lab.url}/lab?token={lab.token}")
            item = page.locator(".jp-OllamaStatus")
            expect(item).to_have_text("Ollama: running · llama3.2", timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "lab_status_running.png"))

            item.click()
            sidebar = page.locator("#ollama-nb-sidebar")
            expect(sidebar).to_be_visible()
            model = sidebar.locator('.jp-OllamaSidebar-model[data-model="gemma3:4b"]')
            expect(model).to_be_visible(timeout=15_000)
            expect(model.locator(".jp-OllamaSidebar-cap", has_text="vision")).to_be_visible()
            for name in ("llama3.2:latest", "qwen3:0.6b", "nomic-embed-text:latest"):
                expect(sidebar.locator(f'[data-model="{name}"]')).to_have_count(1)

            # Warm a model from the sidebar: it shows up as loaded, with its memory.
            model.locator('button[data-action="warm"]').click()
            loaded = sidebar.locator('.jp-OllamaSidebar-loaded[data-model="gemma3:4b"]')
            expect(loaded).to_be_visible(timeout=15_000)
            expect(loaded).to_contain_text("GB")
            page.screenshot(path=str(ARTIFACTS / "lab_sidebar.png"))

            lab.ollama.stop()
            # Within a poll interval or two (the poller backs off only after failures).
            expect(item).to_contain_text("Ollama: unreachable", timeout=(6 * POLL_S + 4) * 1000)
            expect(sidebar.locator(".jp-OllamaSidebar-badge")).to_have_text("unreachable")
            page.screenshot(path=str(ARTIFACTS / "lab_status_unreachable.png"))
        finally:
            browser.close()
