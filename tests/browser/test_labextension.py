"""JupyterLab in a real browser: the status bar item and the sidebar, end to end.

JupyterLab is started on loopback with our server extension and the prebuilt
lab extension from this tree (``ollama_nb/labextension``, built by
``npm --prefix labextension run build:prod`` or by building the wheel), in front
of a stand-in Ollama. Debian's Chromium is driven by Playwright through
``executable_path``: ``playwright install`` downloads browsers and is never used.
Screenshots go to ``artifacts/``.
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
from dataclasses import dataclass
from pathlib import Path

import httpx
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Lab:
    url: str
    token: str
    ollama: StandinServer
    log: Path


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if not (BUILT / "package.json").exists():
        pytest.fail(
            "The lab extension is not built: run `npm --prefix labextension ci && "
            "npm --prefix labextension run build:prod` (or build the wheel) first."
        )
    ollama = StandinServer().start()
    # Lab finds the extension by its package name under a labextensions folder.
    extensions = tmp_path / "labextensions"
    extensions.mkdir()
    (extensions / "ollama_nb").symlink_to(BUILT, target_is_directory=True)
    settings = tmp_path / "app-settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(
        json.dumps(
            {
                # No news or update pop-up over the page.
                "@jupyterlab/apputils-extension:notification": {
                    "checkForUpdates": False,
                    "fetchNews": "false",
                },
                "ollama_nb:plugin": {"pollInterval": POLL_S},
            }
        )
    )
    config = tmp_path / "config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"ollama_nb.server_extension": True}}})
    )
    for name in ("root", "workspaces", "user-settings", "data", "runtime"):
        (tmp_path / name).mkdir()
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "OLLAMA_HOST": ollama.host,
        "OLLAMA_NB_DEFAULT_MODEL": "llama3.2",
        "OLLAMA_NB_DATA_DIR": str(tmp_path / "data"),
        "OLLAMA_NB_RETRY_ATTEMPTS": "0",
        "JUPYTER_CONFIG_DIR": str(config),
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
                f"--ServerApp.root_dir={tmp_path / 'root'}",
                f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
                f"--LabApp.user_settings_dir={tmp_path / 'user-settings'}",
                f"--LabApp.app_settings_dir={settings}",
                f"--LabApp.extra_labextensions_path={extensions}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, token, process, log)
        yield Lab(url, token, ollama, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        ollama.stop()


def _wait_for(url: str, token: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/status", params={"token": token}, timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"JupyterLab did not start in 60 s:\n{log.read_text()[-3000:]}")


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
