"""A real Chromium: a page from a foreign origin is refused, one from an allowed origin served.

The pages come from a small HTTP server of the test's own on loopback; Chromium resolves
``evil.example`` to it, so the foreign page really has that origin, and the allowed page
is ``http://localhost:PORT`` (allowed by default, like any localhost port). No request is
intercepted (Playwright's interception answers CORS preflights itself). Chromium's own
private-network checks are switched off: they exist only in Chromium, and the server must
refuse a foreign page by itself (Firefox and Safari send the request).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import NEEDS_SERVER, Target

CHROMIUM = Path("/usr/bin/chromium")
FOREIGN = "evil.example"
ALLOWED = "localhost"

try:
    from playwright.sync_api import Page, sync_playwright
except ModuleNotFoundError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    NEEDS_SERVER,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (apt-get install chromium); CI installs it",
    ),
    pytest.mark.skipif(
        sync_playwright is None, reason="playwright is not installed (pip install playwright)"
    ),
]


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<p>a page</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def pages() -> Iterator[int]:
    """A loopback server for the pages; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert sync_playwright is not None
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                "--disable-features=BlockInsecurePrivateNetworkRequests,"
                "PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,"
                "LocalNetworkAccessChecks",
                f"--host-resolver-rules=MAP {FOREIGN} 127.0.0.1",
            ],
        )  # fmt: skip
        try:
            yield chromium
        finally:
            chromium.close()


def _page_at(
    browser: Any, host: str, port: int, target: Target
) -> tuple[Page, list[tuple[str, int]]]:
    """A page whose origin is ``http://host:port``, and the server's answers it could see."""
    page = browser.new_page()
    seen: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: (
            seen.append((r.request.method + " " + r.url, r.status))
            if r.url.startswith(target.url)
            else None
        ),
    )
    page.goto(f"http://{host}:{port}/")
    return page, seen


def _served(caplog: pytest.LogCaptureFixture, status: int, method: str, path: str) -> bool:
    """Whether our server's access log shows that answer (Chromium hides CORS failures and
    preflights from the page's events, so the server is asked)."""
    return any(
        r.name == "ollama_nb.serving" and r.getMessage().startswith(f"{status} |")
        and f"{method} " in r.getMessage() and r.getMessage().endswith(f" {path}")
        for r in caplog.records
    )  # fmt: skip


def test_a_foreign_page_is_refused_before_any_work(
    browser: Any, pages: int, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ollama_nb.serving")
    page, seen = _page_at(browser, FOREIGN, pages, target)
    try:
        read = page.evaluate(
            """async (url) => {
                try { const r = await fetch(url + '/api/tags'); return 'read ' + r.status; }
                catch (e) { return 'blocked'; }
            }""",
            target.url,
        )
        # the simple request a page can always send: text/plain needs no preflight
        page.evaluate(
            """async ([url, source]) => {
                await fetch(url + '/api/copy', {method: 'POST', mode: 'no-cors',
                    headers: {'Content-Type': 'text/plain'},
                    body: JSON.stringify({source: source, destination: 'pwned'})});
            }""",
            [target.url, target.chat_model],
        )
    finally:
        page.close()
    assert read == "blocked"  # the answer carries no CORS grant, so the page reads nothing
    assert (f"POST {target.url}/api/copy", 403) in seen
    if not target.real_ollama:
        assert _served(caplog, 403, "GET", "/api/tags")
    names = [m["name"] for m in httpx.get(f"{target.url}/api/tags").json()["models"]]
    assert not any(n.startswith("pwned") for n in names)


def test_an_allowed_origin_is_served_with_a_preflight(
    browser: Any, pages: int, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ollama_nb.serving")
    page, seen = _page_at(browser, ALLOWED, pages, target)
    try:
        result = page.evaluate(
            """async ([url, model]) => {
                const tags = await (await fetch(url + '/api/tags')).json();
                const show = await fetch(url + '/api/show', {method: 'POST',
                    headers: {'Content-Type': 'application/json'},
                    body: JSON.stringify({model: model})});
                return {names: tags.models.map(m => m.name), status: show.status,
                        caps: (await show.json()).capabilities};
            }""",
            [target.url, target.chat_model],
        )
    finally:
        page.close()
    assert any(n.split(":")[0] == target.chat_model.split(":")[0] for n in result["names"])
    assert result["status"] == 200 and "completion" in result["caps"]
    assert (f"POST {target.url}/api/show", 200) in seen
    if not target.real_ollama:  # the JSON POST was preflighted, and the preflight answered
        assert _served(caplog, 204, "OPTIONS", "/api/show")
