"""The official ``ollama`` client (sync, async, streaming) against the server under test."""

from __future__ import annotations

from collections.abc import Iterator

import ollama
import pytest

from .conftest import NEEDS_SERVER, SHORT, Target

pytestmark = [NEEDS_SERVER, pytest.mark.timeout(600)]


@pytest.fixture
def client(target: Target) -> Iterator[ollama.Client]:
    with ollama.Client(host=target.url) as c:
        yield c


def test_chat_sync_answers_with_timings(target: Target, client: ollama.Client) -> None:
    reply = client.chat(
        model=target.chat_model, messages=[{"role": "user", "content": "Hello"}], options=SHORT
    )
    assert isinstance(reply.message.content, str) and reply.message.content
    assert reply.done and reply.done_reason in ("stop", "length")
    assert reply.eval_count is not None and 0 < reply.eval_count <= SHORT["num_predict"]
    assert reply.prompt_eval_count and reply.total_duration and reply.eval_duration


def test_chat_streams_pieces_then_a_final_chunk(target: Target, client: ollama.Client) -> None:
    chunks = list(
        client.chat(
            model=target.chat_model,
            messages=[{"role": "user", "content": "Count to three"}],
            options=SHORT,
            stream=True,
        )
    )
    assert len(chunks) >= 2
    assert all(not c.done for c in chunks[:-1]) and chunks[-1].done
    assert "".join(c.message.content or "" for c in chunks).strip()


async def test_async_client_generates(target: Target) -> None:
    async with ollama.AsyncClient(host=target.url) as client:
        reply = await client.generate(model=target.chat_model, prompt="The sky is", options=SHORT)
    assert reply.response and reply.done


def test_generate_context_is_token_ids_that_continue_the_conversation(
    target: Target, client: ollama.Client
) -> None:
    first = client.generate(model=target.chat_model, prompt="My name is Ada.", options=SHORT)
    context = first.context
    assert context and all(isinstance(t, int) and t >= 0 for t in context)
    assert len(context) >= (first.prompt_eval_count or 0) + (first.eval_count or 0) - 1
    second = client.generate(
        model=target.chat_model, prompt="What is my name?", context=context, options=SHORT
    )
    alone = client.generate(model=target.chat_model, prompt="What is my name?", options=SHORT)
    assert second.prompt_eval_count and alone.prompt_eval_count
    # the earlier turn is evaluated again, in front of the new prompt
    assert second.prompt_eval_count >= alone.prompt_eval_count + len(context) // 2


def test_list_and_show_describe_the_model_from_its_file(
    target: Target, client: ollama.Client
) -> None:
    names = [m.model for m in client.list().models]
    assert any(n and n.split(":")[0] == target.chat_model.split(":")[0] for n in names)
    show = client.show(target.chat_model)
    info = show.modelinfo or {}
    arch = info["general.architecture"]
    assert isinstance(info[f"{arch}.block_count"], int) and info[f"{arch}.block_count"] > 0
    assert isinstance(info[f"{arch}.context_length"], int)
    assert "completion" in (show.capabilities or [])


def test_embed_returns_one_vector_per_input(target: Target) -> None:
    with ollama.Client(host=target.embed_url) as client:
        reply = client.embed(model=target.embed_model, input=["first text", "second text"])
        legacy = client.embeddings(model=target.embed_model, prompt="first text")
    assert len(reply.embeddings) == 2
    assert len(reply.embeddings[0]) == len(reply.embeddings[1]) > 0
    assert len(legacy.embedding) == len(reply.embeddings[0])


def test_errors_are_response_errors_with_ollamas_status(
    target: Target, client: ollama.Client
) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert missing.value.status_code == 404
    assert "not found" in missing.value.error
    with pytest.raises(ollama.ResponseError) as bad_name:
        client.copy(target.chat_model, "not a valid name!")
    assert bad_name.value.status_code == 400
    assert "is invalid" in bad_name.value.error
