"""Run the example notebooks against a stand-in Ollama server.

nbval starts one kernel per notebook and the kernel inherits this process's
environment, so the stand-in is started and ``OLLAMA_HOST`` set in
``pytest_configure``, before any kernel exists. Each notebook gets a fresh data
directory (metrics, logs, server state) and a reset stand-in, so notebooks do not see each
other's requests or pulled models.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from nbval.kernel import RunningKernel

from ollama_nb.testing import StandinConfig, StandinHandle, StandinServer

_server: StandinServer | None = None
_last_notebook: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _server
    if _server is not None:
        return
    # A little simulated speed so streaming cells stream and timings are non-zero.
    _server = StandinServer(StandinConfig(tokens_per_second=400.0)).start()
    os.environ["OLLAMA_HOST"] = _server.host
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")


def pytest_unconfigure(config: pytest.Config) -> None:
    global _server
    if _server is not None:
        _server.stop()
        _server = None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A fresh stand-in state at the start of each notebook."""
    global _last_notebook
    notebook = str(Path(str(item.fspath)))
    if notebook.endswith(".ipynb") and notebook != _last_notebook and _server is not None:
        _last_notebook = notebook
        # The kernel starts after this hook, so it sees its own empty data dir.
        os.environ["OLLAMA_NB_DATA_DIR"] = tempfile.mkdtemp(prefix="ollama_nb_notebook_")
        handle = StandinHandle(_server.url)
        handle.reset()
        handle.close()


# --- updatable displays, compared as a saved notebook shows them -----------------


def _display_id(msg: dict[str, Any]) -> str | None:
    transient = msg["content"].get("transient") or {}
    value = transient.get("display_id")
    return value if isinstance(value, str) else None


class _AppliedUpdates:
    """Iopub messages with each ``update_display_data`` applied to the display it names.

    ``%%chat`` streams into one display (first "…waiting for the model…", then the
    answer as it grows). nbval compares that first render and drops the updates,
    so the answers could only be ignored; nbclient, which saved the notebooks,
    applies the updates. From the first display carrying a ``display_id`` until the
    kernel goes idle, messages are held back in order; updates rewrite the held
    display; then everything is released, as a saved notebook would have it.
    """

    def __init__(self) -> None:
        self.held: list[dict[str, Any]] = []
        self.displays: dict[str, dict[str, Any]] = {}
        self.ready: deque[dict[str, Any]] = deque()

    def take(self, msg: dict[str, Any]) -> None:
        kind = msg["msg_type"]
        shown = _display_id(msg)
        if kind == "update_display_data" and shown in self.displays:
            target = self.displays[shown]["content"]
            target["data"] = msg["content"]["data"]
            target["metadata"] = msg["content"].get("metadata", {})
            return
        if kind == "display_data" and shown is not None:
            self.displays[shown] = msg
        holding = bool(self.held) or (kind == "display_data" and shown is not None)
        if not holding:
            self.ready.append(msg)
            return
        self.held.append(msg)
        if kind == "status" and msg["content"].get("execution_state") == "idle":
            self.ready.extend(self.held)
            self.held.clear()
            self.displays.clear()


_original_get_message = RunningKernel.get_message


def _get_message(self: RunningKernel, stream: str, timeout: float | None = None) -> Any:
    if stream != "iopub":
        return _original_get_message(self, stream, timeout)
    updates: _AppliedUpdates = self.__dict__.setdefault("_ollama_nb_updates", _AppliedUpdates())
    while not updates.ready:
        updates.take(_original_get_message(self, stream, timeout))
    return updates.ready.popleft()


RunningKernel.get_message = _get_message  # type: ignore[method-assign]
