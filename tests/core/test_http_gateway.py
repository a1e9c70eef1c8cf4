"""The HTTP adapter against the stand-in server over real loopback HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ollama_nb.domain import (
    BadRequestError,
    ChatMessage,
    ChatRequest,
    CircuitOpenError,
    EmbedRequest,
    GenerateRequest,
    GenerationOptions,
    HostNotAllowedError,
    ModelName,
    ModelNotFoundError,
    RequestTimeoutError,
    ResponseFormat,
    RunnerError,
    ServerBusyError,
    ServerUnavailableError,
    StreamError,
)
from ollama_nb.infrastructure.clock import SystemClock
from ollama_nb.infrastructure.http_gateway import HttpOllamaGateway, error_for_status
from ollama_nb.infrastructure.resilience import CircuitBreaker, RetryPolicy


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def gateway(ollama_standin: Any) -> AsyncIterator[HttpOllamaGateway]:
    gw = HttpOllamaGateway(ollama_standin.url, clock=SystemClock(), sleep=_no_sleep)
    yield gw
    await gw.aclose()


def _chat(text: str = "hello there", model: str = "llama3.2", **kwargs: Any) -> ChatRequest:
    return ChatRequest(model=ModelName(model), messages=(ChatMessage("user", text),), **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_chat_streams_several_chunks_then_timings(gateway: HttpOllamaGateway) -> None:
    chunks = [c async for c in gateway.chat(_chat("tell me about owls"))]
    assert len(chunks) > 3
    text = "".join(c.content for c in chunks)
    assert "tell me about owls" in text
    final = chunks[-1]
    assert final.done and final.done_reason == "stop"
    assert final.timings is not None and final.timings.eval_count > 0
    assert final.timings.total_ns > 0
    assert all(not c.done for c in chunks[:-1])


async def test_non_streaming_chat_is_one_chunk(
    gateway: HttpOllamaGateway, ollama_standin: Any
) -> None:
    chunks = [c async for c in gateway.chat(_chat("once"), stream=False)]
    assert len(chunks) == 1 and chunks[0].done and "once" in chunks[0].content
    assert ollama_standin.requests()[-1]["body"]["stream"] is False


async def test_generate_and_options_reach_the_server(
    gateway: HttpOllamaGateway, ollama_standin: Any
) -> None:
    request = GenerateRequest(
        model=ModelName("llama3.2"),
        prompt="count to ten please",
        options=GenerationOptions(num_predict=3, temperature=0.0, seed=1),
    )
    chunks = [c async for c in gateway.generate(request)]
    assert chunks[-1].done_reason == "length"
    assert chunks[-1].timings is not None and chunks[-1].timings.eval_count == 3
    body = ollama_standin.requests()[-1]["body"]
    assert body["options"] == {"num_predict": 3, "temperature": 0.0, "seed": 1}


async def test_thinking_is_separated_from_content(gateway: HttpOllamaGateway) -> None:
    chunks = [
        c async for c in gateway.chat(_chat("why is the sky blue", model="qwen3:0.6b", think=True))
    ]
    assert "".join(c.thinking for c in chunks)
    assert "why is the sky blue" in "".join(c.content for c in chunks)


async def test_schema_format_yields_valid_json(gateway: HttpOllamaGateway) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    import json

    chunks = [c async for c in gateway.chat(_chat("extract", format=ResponseFormat(schema)))]
    data = json.loads("".join(c.content for c in chunks))
    assert isinstance(data["name"], str) and isinstance(data["age"], int)


async def test_catalogue_endpoints(gateway: HttpOllamaGateway) -> None:
    names = [m.name for m in await gateway.list_models()]
    assert "llama3.2:latest" in names
    info = await gateway.show(ModelName("gemma3:4b"))
    assert info.supports("vision")
    assert info.details.family
    # Ollama treats a name without a tag as :latest.
    assert (await gateway.show(ModelName("llama3.2"))).supports("completion")
    assert "standin" in (await gateway.version())
    assert await gateway.is_alive()
    [c async for c in gateway.chat(_chat())]
    running = await gateway.running()
    assert any(ModelName("llama3.2").matches(m.name) for m in running)
    assert running[0].expires_at is not None


async def test_embed(gateway: HttpOllamaGateway) -> None:
    result = await gateway.embed(
        EmbedRequest(model=ModelName("nomic-embed-text"), inputs=("a", "b"))
    )
    assert len(result.embeddings) == 2
    assert len(result.embeddings[0]) > 8
    assert result.embeddings[0] != result.embeddings[1]


async def test_pull_copy_delete(gateway: HttpOllamaGateway) -> None:
    steps = [s async for s in gateway.pull(ModelName("moondream"))]
    assert steps[-1].status == "success"
    assert any(s.total and s.completed for s in steps)
    await gateway.copy(ModelName("moondream"), ModelName("my-moon:v1"))
    assert "my-moon:v1" in [m.name for m in await gateway.list_models()]
    await gateway.delete(ModelName("my-moon:v1"))
    assert "my-moon:v1" not in [m.name for m in await gateway.list_models()]
    with pytest.raises(ModelNotFoundError):
        await gateway.delete(ModelName("my-moon:v1"))


async def test_pull_of_unknown_model_reports_the_error_line(gateway: HttpOllamaGateway) -> None:
    with pytest.raises(ModelNotFoundError, match="registry has no model called 'no-such-model'"):
        [s async for s in gateway.pull(ModelName("no-such-model"))]


async def test_unknown_model_is_404_with_pull_hint(gateway: HttpOllamaGateway) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        [c async for c in gateway.chat(_chat(model="llama9"))]
    assert info.value.status_code == 404
    assert "%ollama pull llama9" in str(info.value)


async def test_bad_request_is_400(gateway: HttpOllamaGateway) -> None:
    with pytest.raises(BadRequestError, match="does not support thinking"):
        [c async for c in gateway.chat(_chat(think=True))]


async def test_midstream_error_line_keeps_nothing_silent(
    gateway: HttpOllamaGateway, ollama_standin: Any
) -> None:
    ollama_standin.inject("error_midstream", after=3)
    received: list[str] = []
    with pytest.raises(StreamError) as info:
        async for chunk in gateway.chat(_chat("one two three four five six seven")):
            received.append(chunk.content)
    assert info.value.status_code == 200
    assert len(received) == 3


async def test_dropped_connection_is_a_stream_error(
    gateway: HttpOllamaGateway, ollama_standin: Any
) -> None:
    ollama_standin.inject("drop", after=2)
    with pytest.raises(StreamError, match=r"(broke mid-answer|without finishing)"):
        [c async for c in gateway.chat(_chat("one two three four five six"))]


async def test_500_is_a_runner_error_and_not_retried(
    gateway: HttpOllamaGateway, ollama_standin: Any
) -> None:
    ollama_standin.inject("http_500", count=1)
    with pytest.raises(RunnerError, match="runner"):
        [c async for c in gateway.chat(_chat())]
    assert len([r for r in ollama_standin.requests() if r["path"] == "/api/chat"]) == 1


async def test_503_burst_is_retried_and_counted(
    gateway: HttpOllamaGateway, ollama_standin: Any
) -> None:
    ollama_standin.inject("http_503", count=2, path="/api/chat")
    chunks = [c async for c in gateway.chat(_chat())]
    assert chunks[-1].timings is not None and chunks[-1].timings.retries == 2
    assert len([r for r in ollama_standin.requests() if r["path"] == "/api/chat"]) == 3


async def test_503_beyond_the_retry_budget_is_server_busy(ollama_standin: Any) -> None:
    gw = HttpOllamaGateway(
        ollama_standin.url, clock=SystemClock(), retry=RetryPolicy(attempts=1), sleep=_no_sleep
    )
    ollama_standin.inject("http_503", count=5, path="/api/chat")
    with pytest.raises(ServerBusyError, match="OLLAMA_MAX_QUEUE"):
        [c async for c in gw.chat(_chat())]
    await gw.aclose()


async def test_connection_refused_names_the_host_and_how_to_start() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    gw = HttpOllamaGateway(url, clock=SystemClock(), retry=RetryPolicy(attempts=2), sleep=_no_sleep)
    with pytest.raises(ServerUnavailableError) as info:
        await gw.list_models()
    message = str(info.value)
    assert url in message and "connection refused" in message and "ollama serve" in message
    assert gw.breaker.consecutive_failures == 3  # first try plus two retries
    await gw.aclose()


async def test_breaker_fails_fast_after_repeated_connect_failures() -> None:
    from ollama_nb.infrastructure.clock import SystemClock as Clock

    url = f"http://127.0.0.1:{_free_port()}"
    breaker = CircuitBreaker(url, Clock(), threshold=2, cooldown_s=60)
    gw = HttpOllamaGateway(url, clock=Clock(), retry=RetryPolicy(attempts=0), breaker=breaker)
    for _ in range(2):
        with pytest.raises(ServerUnavailableError):
            await gw.version()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError, match="Not trying again"):
        await gw.version()
    await gw.aclose()


async def test_stall_hits_the_read_timeout(ollama_standin: Any) -> None:
    gw = HttpOllamaGateway(ollama_standin.url, clock=SystemClock(), read_timeout_s=0.5)
    ollama_standin.inject("stall", path="/api/chat")
    with pytest.raises(RequestTimeoutError, match=r"read_timeout_s|stopped sending"):
        [c async for c in gw.chat(_chat())]
    await gw.aclose()


def test_status_mapping_for_403() -> None:
    error = error_for_status(403, "", model=None, host="http://10.0.0.1:11434")
    assert isinstance(error, HostNotAllowedError)
    assert "OLLAMA_HOST=0.0.0.0" in str(error)
