"""pytest fixtures for a stand-in Ollama server (registered as the ``ollama_nb`` plugin).

``ollama_standin`` shares one server across the session and resets it before each test,
so tests stay isolated and fast; ``ollama_standin_factory`` starts a dedicated server with
a custom :class:`StandinConfig` (slots, queue, speeds) for tests that need one. Neither
touches ``os.environ``: a test that needs ``OLLAMA_HOST`` sets it with ``monkeypatch``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from .standin import StandinConfig, StandinHandle, StandinServer


class StandinFactory(Protocol):
    """``factory(config=None, **overrides) -> StandinHandle``."""

    def __call__(self, config: StandinConfig | None = None, **overrides: Any) -> StandinHandle:
        """Start a fresh server; it is stopped when the test ends."""
        ...


@pytest.fixture(scope="session")
def _ollama_standin_session() -> Iterator[StandinHandle]:
    """The session's shared stand-in (default config, free port)."""
    server = StandinServer(StandinConfig()).start()
    handle = StandinHandle(server.url)
    try:
        yield handle
    finally:
        handle.close()
        server.stop()


@pytest.fixture
def ollama_standin(_ollama_standin_session: StandinHandle) -> StandinHandle:
    """The shared stand-in, reset (faults, log, loaded and installed models) for this test."""
    _ollama_standin_session.reset()
    return _ollama_standin_session


@pytest.fixture
def ollama_standin_factory() -> Iterator[StandinFactory]:
    """Start dedicated stand-ins, e.g. ``factory(num_parallel=4, max_queue=2)``."""
    started: list[tuple[StandinServer, StandinHandle]] = []

    def make(config: StandinConfig | None = None, **overrides: Any) -> StandinHandle:
        final = dataclasses.replace(config or StandinConfig(), **overrides)
        server = StandinServer(final).start()
        handle = StandinHandle(server.url)
        started.append((server, handle))
        return handle

    try:
        yield make
    finally:
        for server, handle in started:
            handle.close()
            server.stop()
