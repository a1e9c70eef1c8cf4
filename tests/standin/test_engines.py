"""A second engine sits next to the scripted one behind the same HTTP layer."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping, Sequence

import httpx
import pytest

from ollama_nb.serving.catalogue import COMPLETION
from ollama_nb.testing import StandinConfig, StandinServer
from ollama_nb.testing.standin import (
    DEFAULT_INSTALLED,
    Embedding,
    Finish,
    GenerationRequest,
    ModelCard,
    Piece,
)


class ShoutingEngine:
    """Upper-cases the last message, then fails if asked to."""

    def __init__(self) -> None:
        self.loads = 0

    async def load(self, card: ModelCard, options: Mapping[str, object]) -> float:
        self.loads += 1
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
        text = request.messages[-1].content
        yield Piece(content=text.upper())
        if "fail" in text:
            raise RuntimeError("runner crashed")
        yield Finish("stop", prompt_tokens=1)

    async def embed(self, card: ModelCard, texts: Sequence[str]) -> list[Embedding]:
        return [Embedding(vector=[3.0, 4.0], tokens=1) for _ in texts]


LOUD = ModelCard(
    name="loud:1b",
    family="loud",
    parameter_size="1B",
    parameter_count=10**9,
    quantization_level="Q8_0",
    capabilities=frozenset({COMPLETION}),
    context_length=2048,
    embedding_length=2,
    size_bytes=10**9,
    engine="shout",
)


def test_engine_is_chosen_per_model() -> None:
    engine = ShoutingEngine()
    config = StandinConfig(models=(*DEFAULT_INSTALLED, LOUD))
    with (
        StandinServer(config, engines={"shout": engine}) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        loud = client.post(
            "/api/generate", json={"model": "loud:1b", "prompt": "hey", "stream": False}
        ).json()
        assert loud["response"] == "HEY" and loud["eval_count"] == 1
        scripted = client.post(
            "/api/generate", json={"model": "llama3.2", "prompt": "hey", "stream": False}
        ).json()
        assert scripted["response"] == 'You said: "hey".'
        vector = client.post("/api/embed", json={"model": "loud:1b", "input": "x"}).json()
        assert vector["embeddings"][0] == pytest.approx([0.6, 0.8])
        assert engine.loads == 1


def test_engine_failure_is_reported_like_ollama() -> None:
    config = StandinConfig(models=(LOUD,))
    with (
        StandinServer(config, engines={"shout": ShoutingEngine()}) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        streamed = client.post("/api/generate", json={"model": "loud:1b", "prompt": "fail"})
        lines = [json.loads(x) for x in streamed.text.splitlines()]
        assert streamed.status_code == 200 and lines[-1] == {"error": "runner crashed"}
        whole = client.post(
            "/api/generate", json={"model": "loud:1b", "prompt": "fail", "stream": False}
        )
        assert (whole.status_code, whole.json()) == (500, {"error": "runner crashed"})
        assert client.get("/_standin/stats").json()["running"] == 0
