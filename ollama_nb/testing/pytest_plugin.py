"""pytest fixtures for a stand-in Ollama server (registered as the ``ollama_nb`` plugin).

``ollama_standin`` shares one server across the session and resets it before each test,
so tests stay isolated and fast; ``ollama_standin_factory`` starts a dedicated server with
a custom :class:`StandinConfig` (slots, queue, speeds) for tests that need one. Neither
touches ``os.environ``: a test that needs ``OLLAMA_HOST`` sets it with ``monkeypatch``.

``ollama_runtime_factory`` builds the runtime a test talks through, the one way every
test folder does: its files under the test's ``tmp_path``, no request log, installed as
the process runtime (what ``ollama_nb.chat``, the magics and the widgets use) until the
test ends, then closed and the previous one put back. ``ollama_runtime`` is that runtime
pointed at ``ollama_standin``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from ..application.ports import Clock
from ..runtime import Runtime, set_runtime
from ..settings import load_settings
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


class RuntimeFactory(Protocol):
    """``factory(host, *, clock=None, telemetry=True, install=True, **settings) -> Runtime``."""

    def __call__(
        self,
        host: str | None = None,
        *,
        clock: Clock | None = None,
        telemetry: bool = True,
        install: bool = True,
        **settings: Any,
    ) -> Runtime:
        """A runtime for ``host`` (default: the environment's); ``settings`` go to ``load_settings``.

        ``install=False`` leaves the process runtime alone (a second kernel, say).
        """
        ...


@pytest.fixture
def ollama_runtime_factory(tmp_path: Path) -> Iterator[RuntimeFactory]:
    """Runtimes for this test; each installed one is the process runtime until the next."""
    made: list[tuple[Runtime, bool, Runtime | None]] = []

    def make(
        host: str | None = None,
        *,
        clock: Clock | None = None,
        telemetry: bool = True,
        install: bool = True,
        **settings: Any,
    ) -> Runtime:
        values: dict[str, Any] = {"data_dir": tmp_path / "ollama_nb", "request_log": False}
        values.update(settings)
        if host is not None:
            values["host"] = host
        runtime = Runtime(load_settings(**values), clock=clock, telemetry=telemetry)
        made.append((runtime, install, set_runtime(runtime) if install else None))
        return runtime

    try:
        yield make
    finally:
        for runtime, installed, previous in reversed(made):
            if installed:
                set_runtime(previous)
            runtime.close()


@pytest.fixture
def ollama_runtime(
    ollama_standin: StandinHandle, ollama_runtime_factory: RuntimeFactory
) -> Runtime:
    """The process runtime, pointed at the shared stand-in, with the test defaults."""
    return ollama_runtime_factory(ollama_standin.url)
