"""``langchain-ollama``: ChatOllama (plain, streamed, structured), OllamaLLM, OllamaEmbeddings."""

from __future__ import annotations

from typing import Literal

import pytest
from langchain_ollama import ChatOllama, OllamaEmbeddings, OllamaLLM
from pydantic import BaseModel

from .conftest import LEAKY_CLIENT, NEEDS_SERVER, SHORT, Target

# the client leaks its ollama clients' sockets: see LEAKY_CLIENT
pytestmark = [NEEDS_SERVER, pytest.mark.timeout(600), *LEAKY_CLIENT]


class Pick(BaseModel):
    """A colour chosen from two."""

    color: Literal["red", "blue"]


def _chat(target: Target, **kwargs: object) -> ChatOllama:
    settings: dict[str, object] = {
        "model": target.chat_model, "base_url": target.url, "temperature": 0, "seed": 7,
        "num_predict": SHORT["num_predict"], **kwargs,
    }  # fmt: skip
    return ChatOllama(**settings)  # type: ignore[arg-type]


def test_chat_invoke_and_stream(target: Target) -> None:
    chat = _chat(target)
    answer = chat.invoke("Say hello")
    assert isinstance(answer.content, str) and answer.content
    assert answer.response_metadata["done_reason"] in ("stop", "length")
    pieces = list(chat.stream("Count to three"))
    assert "".join(str(p.content) for p in pieces).strip()


def test_structured_output_from_a_pydantic_model(target: Target) -> None:
    chat = _chat(target, num_predict=24).with_structured_output(Pick, method="json_schema")
    picked = chat.invoke("Pick red or blue.")
    assert isinstance(picked, Pick)


def test_completion_model(target: Target) -> None:
    llm = OllamaLLM(
        model=target.chat_model, base_url=target.url, num_predict=SHORT["num_predict"],
        temperature=0,
    )  # fmt: skip
    assert llm.invoke("The capital of France is").strip()


def test_embeddings_send_null_options_and_succeed(target: Target) -> None:
    embeddings = OllamaEmbeddings(model=target.embed_model, base_url=target.embed_url)
    vectors = embeddings.embed_documents(["first", "second"])
    assert len(vectors) == 2 and len(vectors[0]) == len(vectors[1]) > 0
    assert len(embeddings.embed_query("first")) == len(vectors[0])
