"""A model's tool calls are requests: bounded per round and per answer, sized, validated."""

from __future__ import annotations

import json
from typing import Any

import pytest

import ollama_nb
from ollama_nb.application.tools import ToolOutcome, ToolSet
from ollama_nb.domain import ToolCall
from ollama_nb.infrastructure.http_gateway import _chunk_from_wire
from ollama_nb.runtime import Runtime
from ollama_nb.testing import StandinHandle

calls: list[tuple[int, int]] = []


def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    calls.append((a, b))
    return a + b


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    calls.clear()


def test_a_round_of_5000_calls_runs_at_most_the_limit_and_says_so_in_one_line(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    seen: list[ToolOutcome] = []
    reply = ollama_nb.chat('<<calls 5000 add {"a": 1, "b": 2}>>', tools=[add], on_tool=seen.append)
    limit = runtime.settings.tool_max_calls
    assert limit == 8  # the default
    assert len(calls) == limit
    limited = [o for o in seen if o.status == "limited"]
    assert [o.line() for o in limited] == [
        "🔧 The model asked for 5,000 tool calls in one round; ran the first 8 and skipped "
        "4,992 (limit 8 per round, OLLAMA_NB_TOOL_MAX_CALLS)."
    ]
    assert len(seen) == limit + 1
    # The model heard the same: its call message lists the calls that ran, one result each.
    second = ollama_standin.requests("/api/chat")[1]["body"]["messages"]
    assert len(second[1]["tool_calls"]) == limit
    assert [m["role"] for m in second[2:]] == ["tool"] * (limit + 1)
    assert "skipped 4,992" in second[-1]["content"]
    assert reply.text.startswith("Tool limit returned")


def test_the_calls_per_round_and_rounds_come_from_settings(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    runtime.configure(tool_max_calls=2, tool_max_rounds=1)
    reply = ollama_nb.chat(
        '<<calls 3 add {"a": 1, "b": 1}>> <<call add {"a": 2, "b": 2}>>', tools=[add]
    )
    assert calls == [(1, 1), (1, 1)]
    assert reply.error is not None and "after 1 tool round(s); not run" in reply.error


def test_oversized_arguments_are_refused_before_parsing(runtime: Runtime) -> None:
    tools = ToolSet.from_functions([add])
    huge = json.dumps({"a": 1, "b": 2, "pad": "x" * 100_000})
    outcome = tools.invoke(ToolCall("add", raw_arguments=huge), max_argument_chars=64_000)
    assert outcome.status == "refused"
    assert outcome.content == f"Error: arguments are {len(huge):,} characters; the limit is 64,000."
    big_object = tools.invoke(ToolCall("add", {"a": 1, "b": "9" * 70_000}))
    assert big_object.status == "refused" and "the limit is 64,000" in big_object.content
    assert calls == []


@pytest.mark.parametrize(
    ("wire", "refusal"),
    [
        ([{"function": {"arguments": {"a": 1}}}], "Error: the call names no tool."),
        ([{"function": {"name": "add", "arguments": [1, 2]}}], "Error: arguments must be a JSON object, got an array."),
        ([{"function": {"name": "add", "arguments": "[1, 2]"}}], "Error: arguments must be a JSON object."),
        ([{"function": {"name": "add", "arguments": "{not json"}}], "Error: arguments are not valid JSON."),
        ([{"function": {"name": "rm_rf", "arguments": {}}}], "Error: there is no tool called 'rm_rf'."),
        (["add"], "Error: a tool call must name a function."),
        ([{"function": "add"}], "Error: a tool call must name a function."),
        ({"function": {"name": "add"}}, "Error: tool_calls must be a list, got an object."),
        (7, "Error: tool_calls must be a list, got a number."),
        ([{"function": {"name": "add", "arguments": {"a": "one", "b": 2}}}], "Error: invalid arguments (a: "),
        ([{"function": {"name": "add", "arguments": {"a": 1, "b": 2, "c": 3}}}], "Error: invalid arguments (c: "),
    ],
)  # fmt: skip
def test_a_malformed_call_is_a_tool_error_never_a_traceback(wire: Any, refusal: str) -> None:
    chunk = _chunk_from_wire({"message": {"role": "assistant", "content": "", "tool_calls": wire}})
    tools = ToolSet.from_functions([add])
    outcomes = [tools.invoke(call) for call in chunk.tool_calls]
    assert len(outcomes) == 1
    assert outcomes[0].status == "refused"
    assert outcomes[0].content.startswith(refusal.removesuffix("."))
    assert "\n" not in outcomes[0].line() and len(outcomes[0].line()) < 400
    assert calls == []


def test_a_dict_of_calls_is_described_as_an_object() -> None:
    chunk = _chunk_from_wire({"message": {"content": "", "tool_calls": {"a": 1}}})
    assert chunk.tool_calls[0].malformed == "tool_calls must be a list, got an object"


def test_raw_json_arguments_within_the_limit_run() -> None:
    tools = ToolSet.from_functions([add])
    outcome = tools.invoke(ToolCall("add", raw_arguments='{"a": 2, "b": 3}'))
    assert (outcome.status, outcome.content) == ("ok", "5")


def test_a_long_hostile_name_and_arguments_show_as_one_bounded_line() -> None:
    tools = ToolSet.from_functions([add])
    outcome = tools.invoke(ToolCall("x" * 5000, {"a": "<img src=x onerror=alert(1)>" * 100}))
    line = outcome.line()
    assert len(line) < 400 and "\n" not in line
