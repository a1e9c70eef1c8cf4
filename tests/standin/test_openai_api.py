"""The stand-in speaks the OpenAI API too (same serving layer): tool calls round-trip."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from ollama_nb.testing import StandinHandle

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.fixture
def client(ollama_standin: StandinHandle) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{ollama_standin.url}/v1", api_key="x", max_retries=0) as c:
        yield c


def test_a_tool_call_and_its_result_round_trip(client: openai.OpenAI) -> None:
    ask = {"role": "user", "content": "Use get_weather for Paris"}
    reply = client.chat.completions.create(model="llama3.2", messages=[ask], tools=TOOLS)  # type: ignore[list-item,arg-type]
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = (choice.message.tool_calls or [])[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)
    answer = client.chat.completions.create(
        model="llama3.2",
        messages=[
            ask,  # type: ignore[list-item]
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=TOOLS,  # type: ignore[arg-type]
    )
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content


def test_streamed_tool_calls_finish_with_tool_calls(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="llama3.2",
            messages=[{"role": "user", "content": "Use get_weather for Rome"}],
            tools=TOOLS,  # type: ignore[arg-type]
            stream=True,
        )
    )
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls and calls[0].function and calls[0].function.name == "get_weather"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_json_object_mode_and_embeddings(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="llama3.2",
        messages=[{"role": "user", "content": "a JSON object please"}],
        response_format={"type": "json_object"},
    )
    json.loads(reply.choices[0].message.content or "")
    vectors = client.embeddings.create(model="nomic-embed-text", input=["a", "b"])
    assert len(vectors.data) == 2 and vectors.model == "nomic-embed-text"


def test_a_midstream_failure_reaches_the_sdk_as_an_api_error(
    ollama_standin: StandinHandle, client: openai.OpenAI
) -> None:
    ollama_standin.inject("error_midstream", path="/v1/chat/completions", after=2)
    with pytest.raises(openai.APIError) as failed:
        list(
            client.chat.completions.create(
                model="llama3.2", messages=[{"role": "user", "content": "Hi"}], stream=True
            )
        )
    assert "error" in str(failed.value).lower()
