"""A stand-in in its own process, configured through its environment like ``ollama serve``.

What a client cannot see lives only there: ``OLLAMA_NUM_PARALLEL`` set for the
server never reaches the test's (or the benchmark's) own environment, its CPU
time is not billed to the client, and killing it is a server dying mid-batch.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

#: Variables a client process may carry that must not leak into the server's environment
#: (or the other way round): the server's slots are what the client has to discover.
_CLIENT_ONLY = ("OLLAMA_NUM_PARALLEL", "OLLAMA_NB_HOSTS")


@dataclass(frozen=True, slots=True)
class StandinProcess:
    url: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """Die at once, mid-answer, as a crashed or unplugged server does."""
        self.process.kill()
        self.process.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def standin_process(
    env: Mapping[str, str] | None = None, *, start_timeout_s: float = 120.0
) -> Iterator[StandinProcess]:
    """Start ``python -m ollama_nb.testing.standin serve`` with ``env``; stop it afterwards."""
    port = _free_port()
    base = {k: v for k, v in os.environ.items() if k not in _CLIENT_ONLY}
    full_env = {**base, "OLLAMA_HOST": f"127.0.0.1:{port}", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_nb.testing.standin", "serve"],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                if httpx.head(url + "/", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the stand-in at {url} did not start")
            time.sleep(0.05)
        yield StandinProcess(url, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
