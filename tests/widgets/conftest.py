# mypy: disable-error-code="no-untyped-call"
"""Panels built in a real IPython shell against the stand-in, without a browser.

Widgets get a comm even without a front end (ipywidgets falls back to a dummy
comm when no kernel is connected), so state changes can be read straight off
the widgets, the way the front end would receive them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing import StandinHandle

#: A hang guard that names what never happened, not a speed requirement: far above
#: anything a loaded CI machine needs, well under pytest-timeout's 300 s.
WAIT_S = 60.0
#: Threads the runtime itself owns (its loop, the telemetry writer); panels must add none.
RUNTIME_THREADS = {"ollama_nb-loop", "ollama_nb-telemetry"}


def wait_for(condition: Callable[[], object], what: str, timeout: float = WAIT_S) -> None:
    """Poll until ``condition()`` is truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Env:
    ip: InteractiveShell
    standin: StandinHandle
    runtime: Runtime

    def requests(self, path: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.standin.requests(path)]


def _env(url: str, standin: StandinHandle, tmp_path: Any, **settings: Any) -> Iterator[Env]:
    ip = InteractiveShell.instance()
    runtime = Runtime(
        load_settings(host=url, request_log=False, retry_attempts=0, data_dir=tmp_path, **settings)
    )
    previous = set_runtime(runtime)
    before = set(threading.enumerate())
    try:
        yield Env(ip, standin, runtime)
    finally:
        if "OllamaMagics" in ip.magics_manager.registry:
            ip.run_line_magic("unload_ext", "ollama_nb")
        set_runtime(previous)
        runtime.close()
        leaked = [
            t
            for t in set(threading.enumerate()) - before
            if t.is_alive() and t.name not in RUNTIME_THREADS
        ]
        assert not leaked, f"threads left behind: {leaked}"


@pytest.fixture
def env(ollama_standin: StandinHandle, tmp_path: Any) -> Iterator[Env]:
    yield from _env(ollama_standin.url, ollama_standin, tmp_path)


@pytest.fixture
def slow_env(ollama_standin_factory: Any, tmp_path: Any) -> Iterator[Env]:
    """A stand-in writing 40 tokens/s, so a reply streams long enough to watch and stop."""
    handle = ollama_standin_factory(tokens_per_second=40.0, pull_seconds=2.0)
    yield from _env(handle.url, handle, tmp_path)


@pytest.fixture
def empty_env(ollama_standin_factory: Any, tmp_path: Any) -> Iterator[Env]:
    """A stand-in with no model installed."""
    handle = ollama_standin_factory(models=())
    yield from _env(handle.url, handle, tmp_path)


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
