"""The official ``ollama`` client parses every shape the stand-in produces."""

from __future__ import annotations

from collections.abc import Iterator

import ollama
import pytest

from ollama_nb.testing import StandinHandle


@pytest.fixture
def sync_client(ollama_standin: StandinHandle) -> Iterator[ollama.Client]:
    client = ollama.Client(host=ollama_standin.url)
    yield client
    client._client.close()  # the client has no public close(); its httpx pool must not leak


def test_chat_stream_and_not(sync_client: ollama.Client) -> None:
    msgs = [{"role": "user", "content": "hello"}]
    parts = list(sync_client.chat(model="llama3.2", messages=msgs, stream=True))
    assert "".join(p.message.content or "" for p in parts) == 'You said: "hello".'
    assert parts[-1].done and parts[-1].eval_count == len(parts) - 1
    whole = sync_client.chat(model="llama3.2", messages=msgs, options={"temperature": 0})
    assert whole.message.content == 'You said: "hello".' and whole.done_reason == "stop"


def test_chat_thinking_and_images(sync_client: ollama.Client, png_640x480: str) -> None:
    thought = sync_client.chat(
        model="qwen3:0.6b", messages=[{"role": "user", "content": "q"}], think=True
    )
    assert thought.message.thinking and thought.message.content == 'You said: "q".'
    seen = sync_client.chat(
        model="gemma3:4b",
        messages=[{"role": "user", "content": "look", "images": [png_640x480]}],
    )
    assert "Images received: 1) PNG 640x480." in (seen.message.content or "")


def test_generate(sync_client: ollama.Client) -> None:
    result = sync_client.generate(model="llama3.2", prompt="why", system="sys")
    assert result.response == 'You said: "why". System said: "sys".'
    assert result.context and result.total_duration and result.load_duration


def test_embed(sync_client: ollama.Client) -> None:
    result = sync_client.embed(model="nomic-embed-text", input=["a", "b"])
    assert len(result.embeddings) == 2 and len(result.embeddings[0]) == 768
    assert result.prompt_eval_count == 2
    legacy = sync_client.embeddings(model="nomic-embed-text", prompt="a")
    assert list(legacy.embedding) == list(result.embeddings[0])


def test_list_show_ps(sync_client: ollama.Client) -> None:
    names = {m.model for m in sync_client.list().models}
    assert "llama3.2:latest" in names
    shown = sync_client.show("llama3.2")
    assert shown.capabilities == ["completion", "tools"]
    assert shown.details and shown.details.parameter_size == "3.2B"
    assert shown.modelinfo and shown.modelinfo["llama.context_length"] == 131072
    sync_client.generate(model="llama3.2", prompt="")
    running = sync_client.ps().models
    assert [m.model for m in running] == ["llama3.2:latest"]
    assert running[0].expires_at is not None and running[0].context_length == 4096


def test_pull_delete_copy(sync_client: ollama.Client) -> None:
    progress = list(sync_client.pull("all-minilm", stream=True))
    assert progress[0].status == "pulling manifest" and progress[-1].status == "success"
    assert any(p.completed for p in progress)
    assert sync_client.pull("phi4-mini").status == "success"
    assert sync_client.copy("all-minilm", "mini:copy").status == "success"
    assert sync_client.delete("mini:copy").status == "success"
    with pytest.raises(ollama.ResponseError) as missing:
        sync_client.delete("mini:copy")
    assert missing.value.status_code == 404


def test_errors_surface_as_response_errors(sync_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as not_found:
        sync_client.chat(model="ghost", messages=[{"role": "user", "content": "x"}])
    assert not_found.value.status_code == 404
    assert not_found.value.error == "model 'ghost' not found"
    with pytest.raises(ollama.ResponseError) as unknown_pull:
        list(sync_client.pull("ghost", stream=True))
    assert unknown_pull.value.error.startswith("pull model manifest: file does not exist: ")
    assert "llama3.2:latest" in unknown_pull.value.error  # says what can be pulled


def test_midstream_error_reaches_the_client(
    sync_client: ollama.Client, ollama_standin: StandinHandle
) -> None:
    ollama_standin.inject("error_midstream", after=2, path="/api/chat")
    received: list[str] = []
    with pytest.raises(ollama.ResponseError):
        for part in sync_client.chat(
            model="llama3.2", messages=[{"role": "user", "content": "a b c"}], stream=True
        ):
            received.append(part.message.content or "")
    assert len(received) == 2


async def test_async_client(ollama_standin: StandinHandle) -> None:
    client = ollama.AsyncClient(host=ollama_standin.url)
    async with client._client:  # no public aclose(); close the httpx pool ourselves
        await _exercise_async(client)


async def _exercise_async(client: ollama.AsyncClient) -> None:
    reply = await client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    assert reply.message.content == 'You said: "hi".'
    stream = await client.chat(
        model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    parts = [p async for p in stream]
    assert parts[-1].done
    generated = await client.generate(model="qwen3:0.6b", prompt="p", think=False)
    assert generated.response == 'You said: "p".' and not generated.thinking
    embedded = await client.embed(model="nomic-embed-text", input="x")
    assert len(embedded.embeddings) == 1
    assert (await client.list()).models and (await client.show("gemma3:4b")).capabilities
    assert (await client.pull("moondream")).status == "success"
    assert (await client.copy("moondream", "moon:2")).status == "success"
    assert (await client.delete("moon:2")).status == "success"
    assert [m.model for m in (await client.ps()).models]


def test_client_reads_ollama_host(
    ollama_standin: StandinHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_standin.host)
    client = ollama.Client()
    try:
        assert client.list().models
    finally:
        client._client.close()
