"""Tool descriptions read from a function, and calls checked against the same signature."""

from __future__ import annotations

import enum
from typing import Any, Literal

import pytest

from ollama_nb.application.tools import MAX_RESULT_CHARS, ToolSet, tool_from_function
from ollama_nb.domain import InvalidInputError, ToolCall


def add(a: int, b: int = 2) -> int:
    """Add two whole numbers.

    A second paragraph the model does not need.

    Args:
        a: the first number,
            on two lines.
        b (int): the second number.

    Returns:
        The sum.
    """
    return a + b


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def search_df(query: str, limit: int = 5, mode: Literal["any", "all"] = "any") -> list[str]:
    """Find rows mentioning ``query``.

    :param query: words to look for
    :param limit: at most this many rows
    """
    return [query] * limit


def test_schema_follows_the_ollama_tools_shape() -> None:
    wire = tool_from_function(add).to_wire()
    assert wire == {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two whole numbers.",
            "parameters": {
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "description": "the first number, on two lines."},
                    "b": {"type": "integer", "default": 2, "description": "the second number."},
                },
                "required": ["a"],
            },
        },
    }


def test_sphinx_docstring_literal_and_optional_types() -> None:
    params = tool_from_function(search_df).parameters
    assert tool_from_function(search_df).description == "Find rows mentioning ``query``."
    assert params["properties"]["query"] == {"type": "string", "description": "words to look for"}
    assert params["properties"]["mode"]["enum"] == ["any", "all"]
    assert params["required"] == ["query"]


def test_functions_a_model_cannot_call_are_refused_up_front() -> None:
    def star(*values: int) -> int:
        return sum(values)

    def positional(x: int, /) -> int:
        return x

    with pytest.raises(InvalidInputError, match=r"\*values"):
        tool_from_function(star)
    with pytest.raises(InvalidInputError, match="positional-only"):
        tool_from_function(positional)
    with pytest.raises(InvalidInputError, match="must be a function"):
        tool_from_function(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="cannot be a tool name"):
        tool_from_function(lambda x: x)
    with pytest.raises(InvalidInputError, match="Two tools"):
        ToolSet.from_functions([add, add])


def test_valid_call_runs_and_its_value_is_the_result() -> None:
    tools = ToolSet.from_functions([add, search_df])
    outcome = tools.invoke(ToolCall("add", {"a": 2, "b": 3}))
    assert (outcome.status, outcome.content) == ("ok", "5")
    listed = tools.invoke(ToolCall("search_df", {"query": "tea", "limit": 2}))
    assert listed.content == '["tea", "tea"]'


def test_unknown_function_is_answered_as_an_error_and_nothing_runs() -> None:
    ran: list[str] = []

    def safe() -> str:
        ran.append("safe")
        return "ok"

    tools = ToolSet.from_functions([safe])
    outcome = tools.invoke(ToolCall("os_system", {"cmd": "rm -rf /"}))
    assert outcome.status == "refused"
    assert "no tool called 'os_system'" in outcome.content
    assert "safe" in outcome.content  # tells the model what it may call
    assert ran == []


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"a": "two"}, "a: Input should be a valid integer"),
        ({}, "a: Field required"),
        ({"a": 1, "rm": True}, "rm: Extra inputs are not permitted"),
    ],
)
def test_arguments_that_do_not_validate_are_not_executed(
    arguments: dict[str, Any], problem: str
) -> None:
    calls: list[int] = []

    def double(a: int) -> int:
        calls.append(a)
        return 2 * a

    outcome = ToolSet.from_functions([double]).invoke(ToolCall("double", arguments))
    assert outcome.status == "refused"
    assert problem in outcome.content
    assert calls == []


def test_an_exception_in_the_tool_is_its_result() -> None:
    def broken(x: int) -> int:
        raise ZeroDivisionError("division by zero")

    outcome = ToolSet.from_functions([broken]).invoke(ToolCall("broken", {"x": 1}))
    assert outcome.status == "error"
    assert outcome.content == "Error: ZeroDivisionError: division by zero"
    assert outcome.line() == "🔧 broken(x=1) raised Error: ZeroDivisionError: division by zero"


def test_long_results_are_cut_with_a_marker() -> None:
    def big() -> str:
        return "x" * (MAX_RESULT_CHARS + 10)

    outcome = ToolSet.from_functions([big]).invoke(ToolCall("big", {}))
    assert outcome.content.endswith("[10 characters left out]")
