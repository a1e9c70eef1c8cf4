"""The tool loop through the stand-in over loopback: calls run here, results go back."""

from __future__ import annotations

import asyncio

import pytest

import ollama_nb
from ollama_nb.application.tools import ToolOutcome
from ollama_nb.domain import InvalidInputError
from ollama_nb.runtime import Runtime
from ollama_nb.testing import StandinHandle


def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


def test_a_tool_call_runs_and_the_reply_uses_its_result(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    seen: list[ToolOutcome] = []
    reply = ollama_nb.chat("What is 12 plus 12? Use add.", tools=[add], on_tool=seen.append)

    assert reply.text == 'Tool add returned: "24".'
    assert [o.line() for o in seen] == ["🔧 add(a=12, b=12) → 24"]
    first, second = (r["body"] for r in ollama_standin.requests("/api/chat"))
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two whole numbers.",
                "parameters": {
                    "type": "object",
                    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                    "required": ["a", "b"],
                },
            },
        }
    ]
    # Ollama's documented shape: the model's call message, then the result naming the tool.
    assert second["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "add", "arguments": {"a": 12, "b": 12}}}],
        },
        {"role": "tool", "content": "24", "tool_name": "add"},
    ]
    assert second["tools"] == first["tools"]
    assert [m.role for m in reply.exchange] == ["assistant", "tool"]


def test_the_official_client_reads_our_tool_messages(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    """The same exchange replayed through the ``ollama`` package parses as Ollama's types."""
    import ollama

    reply = ollama_nb.chat("What is 12 plus 12? Use add.", tools=[add])
    client = ollama.Client(host=ollama_standin.url)
    messages = [{"role": "user", "content": "What is 12 plus 12? Use add."}]
    messages += [m.to_wire() for m in reply.exchange]
    try:
        again = client.chat(model="llama3.2", messages=messages, tools=[add])
    finally:
        client._client.close()  # no public close(); its httpx pool must not leak
    assert again.message.content == reply.text


def test_a_model_without_tools_is_refused_before_sending(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        ollama_nb.chat("add 1 and 2", model="gemma3:4b", tools=[add])
    message = str(caught.value)
    assert "does not support tools" in message
    assert "llama3.2:latest" in message and "qwen3:0.6b" in message
    assert ollama_standin.requests("/api/chat") == []


def test_calls_to_other_functions_or_bad_arguments_go_back_as_errors(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    ran: list[tuple[int, int]] = []

    def safe_add(a: int, b: int) -> int:
        ran.append((a, b))
        return a + b

    prompt = 'Go. <<call shutil_rmtree {"path": "/"}>> <<call safe_add {"a": "x"}>>'
    seen: list[ToolOutcome] = []
    reply = ollama_nb.chat(prompt, tools=[safe_add], on_tool=seen.append)

    assert [o.status for o in seen] == ["refused", "refused"]
    assert ran == []
    sent = [r["body"]["messages"][-1] for r in ollama_standin.requests("/api/chat")[1:]]
    assert sent[0]["role"] == "tool" and sent[0]["tool_name"] == "shutil_rmtree"
    assert "no tool called 'shutil_rmtree'" in sent[0]["content"]
    assert "a: Input should be a valid integer" in sent[1]["content"]
    assert reply.text.startswith('Tool safe_add returned: "Error: invalid arguments')


def test_an_exception_goes_back_to_the_model(runtime: Runtime) -> None:
    def lookup(key: str) -> str:
        raise KeyError(key)

    reply = ollama_nb.chat('<<call lookup {"key": "nope"}>>', tools=[lookup])
    assert reply.text == "Tool lookup returned: \"Error: KeyError: 'nope'\"."


def test_max_rounds_stops_a_model_that_keeps_calling(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    count: list[int] = []

    def tick() -> int:
        count.append(1)
        return len(count)

    reply = ollama_nb.chat("<<call tick>> <<call tick>> <<call tick>>", tools=[tick], max_rounds=2)
    assert len(count) == 2
    assert reply.error is not None and "after 2 tool round(s)" in reply.error
    assert len(ollama_standin.requests("/api/chat")) == 3
    with pytest.raises(InvalidInputError, match="at least 1"):
        ollama_nb.chat("hi", tools=[tick], max_rounds=0)


def test_telemetry_counts_tool_calls(runtime: Runtime) -> None:
    ollama_nb.chat("What is 1 plus 1? Use add.", tools=[add])
    events = [e for e in runtime.recent.snapshot() if e.kind == "chat"]
    assert [e.tool_calls for e in events] == [1, 0]


def test_async_twin(runtime: Runtime) -> None:
    async def ask() -> str:
        reply = await ollama_nb.achat("What is 2 plus 2? Use add.", tools=[add])
        return reply.text

    assert asyncio.run(ask()) == 'Tool add returned: "4".'
