"""Out of file descriptors, the server pauses accepting, says so rarely, and recovers.

Before, tornado's accept loop spun on EMFILE and logged a traceback per turn (123 MB of
log in 15 s). The stand-in CLI runs here with a low descriptor limit, the test fills it
with idle connections until the server reports it cannot accept, then lets them go.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

LIMIT = 64


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _low_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def _wait(check: object, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/version", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_emfile_pauses_accepting_and_the_server_recovers(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ollama_nb.testing.standin", "serve"],
            env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_low_limit,
        )  # fmt: skip
    held: list[socket.socket] = []
    try:
        _wait(lambda: _up(url), "the stand-in did not start")
        exhausted = lambda: b"cannot accept connections" in log.read_bytes()  # noqa: E731
        while not exhausted() and len(held) < 4 * LIMIT:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        _wait(exhausted, "the server never reported running out of descriptors")
        for sock in held:
            sock.close()
        held.clear()
        _wait(lambda: _up(url), "the server did not accept again once descriptors were free")
    finally:
        for sock in held:
            sock.close()
        proc.terminate()
        proc.wait(10)
    text = log.read_text(errors="replace")
    assert text.count("cannot accept connections") <= 3
    assert "Traceback" not in text
    assert len(text) < 20_000
