"""Run a stand-in server in its own process, so its CPU time is not billed to the client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def standin_process(env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Yield the base URL of a freshly started ``python -m ollama_nb.testing.standin serve``."""
    port = free_port()
    full_env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_nb.testing.standin", "serve"],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.head(url + "/").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the stand-in did not start")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
