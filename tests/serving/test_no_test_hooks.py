"""The server users run has Ollama's routes and nothing a test double adds.

Served over real HTTP with a tiny engine; the stand-in, built on the same server, is the
contrast that shows each check can fail.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence

import httpx
import pytest

from ollama_nb.serving import (
    Embedding,
    Finish,
    GenerationRequest,
    ModelCard,
    Piece,
    Server,
    ServerConfig,
)
from ollama_nb.serving.catalogue import COMPLETION
from ollama_nb.testing import StandinServer

ECHO = ModelCard(
    name="echo:1b", family="echo", parameter_size="1B", parameter_count=10**9,
    quantization_level="Q8_0", capabilities=frozenset({COMPLETION}), context_length=2048,
    embedding_length=2, size_bytes=10**9, engine="echo",
)  # fmt: skip
STANDIN_PATHS = ("/_standin/faults", "/_standin/requests", "/_standin/reset",
                 "/_standin/stats", "/_standin/")  # fmt: skip
SECRET = "zebra-4417"


class EchoEngine:
    """Repeats the last message."""

    async def load(self, card: ModelCard, options: Mapping[str, object]) -> float:
        return 0.0

    async def unload(self, card: ModelCard) -> None:
        return None

    def memory_bytes(self, card: ModelCard) -> int | None:
        return None

    def vram_bytes(self, card: ModelCard) -> int:
        return 0

    async def generate(
        self, card: ModelCard, request: GenerationRequest
    ) -> AsyncGenerator[Piece | Finish, None]:
        yield Piece(content=request.messages[-1].content)
        yield Finish("stop", prompt_tokens=1)

    async def embed(self, card: ModelCard, texts: Sequence[str]) -> list[Embedding]:
        return [Embedding(vector=[1.0, 0.0], tokens=1) for _ in texts]


def _generate(client: httpx.Client, fault: str) -> httpx.Response:
    return client.post(
        "/api/generate",
        json={"model": "echo:1b", "prompt": f"{SECRET} says hi", "stream": False},
        headers={"X-Standin-Fault": fault},
    )


@pytest.fixture
def server() -> Iterator[Server]:
    with Server(ServerConfig(models=(ECHO,)), {"echo": EchoEngine()}) as running:
        yield running


def test_admin_paths_are_404_for_every_method(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        for path in STANDIN_PATHS:
            for method in ("GET", "POST", "DELETE"):
                response = client.request(method, path, json={"fault": "http_500"})
                assert (response.status_code, response.text) == (404, "404 page not found")


@pytest.mark.parametrize("fault", ["http_500", "http_503", "error_midstream", "drop", "nonsense"])
def test_fault_headers_are_ignored(server: Server, fault: str) -> None:
    with httpx.Client(base_url=server.url) as client:
        response = _generate(client, fault)
    assert response.status_code == 200
    assert response.json()["response"] == f"{SECRET} says hi"


def test_prompts_are_not_readable_over_http(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        _generate(client, "")
        for path in ("/", "/api/version", "/api/tags", "/api/ps", *STANDIN_PATHS):
            assert SECRET not in client.get(path).text


def test_the_stand_in_on_the_same_server_does_have_them() -> None:
    """The contrast: each check above fails against the test double."""
    with (
        StandinServer(engines={"echo": EchoEngine()}) as standin,
        httpx.Client(base_url=standin.url) as client,
    ):
        assert client.get("/_standin/stats").status_code == 200
        faulted = client.post(
            "/api/generate",
            json={"model": "llama3.2", "prompt": f"{SECRET} says hi", "stream": False},
            headers={"X-Standin-Fault": "http_500"},
        )
        assert faulted.status_code == 500
        assert SECRET in client.get("/_standin/requests").text
