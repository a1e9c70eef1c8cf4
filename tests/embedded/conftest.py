"""Fixtures for the integration tier: a real embedded server with Gemma 3 270M.

The tier needs llama-cpp-python; CI installs it with the ``[embedded]`` extra. Without it
these tests are skipped with that reason (and only then).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ollama_nb.embedded import EmbeddedConfig, build_server
from ollama_nb.serving import Server

Factory = Callable[..., Server]


def _llama_cpp_missing() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return True
    return False


NO_LLAMA = pytest.mark.skipif(
    _llama_cpp_missing(),
    reason='llama-cpp-python is not installed (pip install -e ".[embedded]" runs this tier)',
)


@pytest.fixture(scope="session")
def embedded_factory() -> Iterator[Factory]:
    """Start embedded servers (stopped at the end); kwargs go to ``build_server``."""
    started: list[Server] = []

    def make(config: EmbeddedConfig | None = None, **kwargs: object) -> Server:
        server = build_server(config or EmbeddedConfig(), **kwargs)  # type: ignore[arg-type]
        started.append(server.start(timeout=60))
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def embedded(embedded_factory: Factory) -> Server:
    """One shared server: the model loads once for the whole tier."""
    return embedded_factory()


@pytest.fixture
def client(embedded: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=embedded.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="session")
def default_gguf(embedded: Server) -> Path:
    return Path(embedded.config.models[0].engine_source)
