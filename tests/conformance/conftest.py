"""The server under test for the conformance suite: ours by default, a real Ollama on request.

By default each test module starts one embedded server (real llama.cpp, the bundled
models) on a free loopback port and stops it afterwards. Set
``OLLAMA_NB_CONFORMANCE_HOST=http://127.0.0.1:11434`` to run the very same tests against a
real Ollama instead, with ``OLLAMA_NB_CONFORMANCE_CHAT_MODEL`` (default ``llama3.2:1b``) and
``OLLAMA_NB_CONFORMANCE_EMBED_MODEL`` (default ``all-minilm``) pulled there: where the two
disagree, the real one is right.

Embeddings go to the embedded server when it bundles an embedding model; until it does,
they go to the stand-in (``ollama_nb.testing``), which shares the same HTTP layer, and the
target says so (``embed_source``).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

HOST_ENV = "OLLAMA_NB_CONFORMANCE_HOST"
CHAT_MODEL_ENV = "OLLAMA_NB_CONFORMANCE_CHAT_MODEL"
EMBED_MODEL_ENV = "OLLAMA_NB_CONFORMANCE_EMBED_MODEL"


def _llama_cpp_missing() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return True
    return False


NEEDS_SERVER = pytest.mark.skipif(
    _llama_cpp_missing() and not os.environ.get(HOST_ENV),
    reason='llama-cpp-python is not installed (pip install -e ".[embedded]") and '
    f"{HOST_ENV} names no Ollama to test instead",
)


@dataclass(frozen=True)
class Target:
    """Where the clients point: base URL, models, and what is serving them."""

    url: str
    chat_model: str
    embed_url: str
    embed_model: str
    real_ollama: bool
    embed_source: str

    @property
    def host(self) -> str:
        """``host:port`` for clients that take ``OLLAMA_HOST``."""
        return self.url.removeprefix("http://")

    def capabilities(self, model: str) -> list[str]:
        """What ``/api/show`` says the model can do."""
        base = self.embed_url if model == self.embed_model else self.url
        show = httpx.post(f"{base}/api/show", json={"model": model}, timeout=30).json()
        return list(show.get("capabilities", []))


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    """One server per test module (a real Ollama when ``OLLAMA_NB_CONFORMANCE_HOST`` is set)."""
    remote = os.environ.get(HOST_ENV, "").strip().rstrip("/")
    if remote:
        url = remote if "://" in remote else f"http://{remote}"
        yield Target(
            url=url,
            chat_model=os.environ.get(CHAT_MODEL_ENV, "llama3.2:1b"),
            embed_url=url,
            embed_model=os.environ.get(EMBED_MODEL_ENV, "all-minilm"),
            real_ollama=True,
            embed_source="ollama",
        )
        return
    from ollama_nb.embedded import EmbeddedConfig, build_server
    from ollama_nb.serving.catalogue import COMPLETION, EMBEDDING
    from ollama_nb.testing.standin import StandinConfig, StandinServer

    server = build_server(EmbeddedConfig()).start(timeout=60)
    standin: StandinServer | None = None
    try:
        cards = server.config.models
        chat = next(c.name for c in cards if COMPLETION in c.capabilities)
        embed = next((c.name for c in cards if EMBEDDING in c.capabilities), None)
        if embed is None:
            standin = StandinServer(StandinConfig()).start()
            embed_url, embed, source = standin.url, "nomic-embed-text", "stand-in"
        else:
            embed_url, source = server.url, "embedded"
        yield Target(server.url, chat, embed_url, embed, False, source)
    finally:
        if standin is not None:
            standin.stop()
        server.stop()


LEAKY_CLIENT = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.usefixtures("collect_leaked_clients"),
]
"""For clients (langchain-ollama, llm-ollama) that build an ollama client per call and never
close it: their sockets are collected, not closed. That is the client's leak, not the
server's behaviour, and it is collected after each of their tests, under these filters,
rather than in whichever test the garbage collector happens to run next."""


@pytest.fixture
def collect_leaked_clients() -> Iterator[None]:
    yield
    gc.collect()


SHORT = {"num_predict": 3, "temperature": 0, "seed": 7}
"""Options for every generation here: a few tokens keep the suite quick on two cores."""
