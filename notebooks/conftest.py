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
from pathlib import Path

import pytest

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
