# mypy: disable-error-code="no-untyped-call"
"""``%%chat --tools``: notebook functions called by the model, in a real IPython shell."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from ollama_nb.domain import InvalidInputError
from ollama_nb.presentation.display import ChatReply

from .conftest import Shell

DEFINE = '''
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b

def boom(x: int) -> int:
    """Always fails."""
    raise RuntimeError("disk on fire")
'''


def test_tools_run_in_the_kernel_and_the_answer_uses_the_result(shell: Shell) -> None:
    shell.run(DEFINE)
    reply = shell.run("%%chat -m llama3.2 --tools add\nWhat is 12 plus 12? Use add.")
    assert isinstance(reply, ChatReply)
    assert reply.text == 'Tool add returned: "24".'
    assert "🔧 add(a=12, b=12) → 24" in shell.out.texts()
    # The rounds stay in the thread: the next question carries the call and its result.
    shell.run("%%chat -m llama3.2\nThanks. And now?")
    history = shell.chat_requests()[-1]["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant", "user"]
    assert history[2] == {"role": "tool", "content": "24", "tool_name": "add"}


def test_an_exception_is_one_line_and_goes_back_to_the_model(shell: Shell) -> None:
    shell.run(DEFINE)
    reply = shell.run('%%chat -m llama3.2 --tools add,boom\nTry <<call boom {"x": 1}>>')
    assert "🔧 boom(x=1) raised Error: RuntimeError: disk on fire" in shell.out.texts()
    assert reply.text == 'Tool boom returned: "Error: RuntimeError: disk on fire".'
    assert "Traceback" not in shell.out.texts()


def test_max_rounds_is_a_flag_and_the_stop_is_reported(shell: Shell) -> None:
    shell.run(DEFINE)
    shell.run(
        '%%chat -m llama3.2 --tools add --max-rounds 1\n<<call add {"a": 1, "b": 2}>> '
        '<<call add {"a": 3, "b": 4}>>'
    )
    texts = shell.out.texts()
    assert "after 1 tool round(s); not run" in texts
    assert len(shell.chat_requests()) == 2


def test_only_existing_functions_can_be_named(shell: Shell) -> None:
    shell.run("x = 3")
    with pytest.raises(UsageError, match="no function named 'nothing'"):
        shell.run("%%chat -m llama3.2 --tools nothing\nhi")
    with pytest.raises(UsageError, match="x is a int, not a function"):
        shell.run("%%chat -m llama3.2 --tools x\nhi")
    assert shell.chat_requests() == []


def test_model_without_tools_is_refused_before_sending(shell: Shell) -> None:
    shell.run(DEFINE)
    with pytest.raises(InvalidInputError) as caught:  # the cell fails, in one line
        shell.run("%%chat -m gemma3:4b --tools add\nadd 1 and 1")
    assert "does not support tools" in str(caught.value)
    assert "llama3.2:latest" in str(caught.value)
    assert shell.chat_requests() == []


def test_a_round_of_5000_calls_runs_the_limit_and_says_so_in_one_line(shell: Shell) -> None:
    shell.run(
        "ran = []\n" + DEFINE.replace("    return a + b", "    ran.append(1)\n    return a + b")
    )
    shell.run('%%chat -m llama3.2 --tools add\n<<calls 5000 add {"a": 1, "b": 2}>>')
    assert len(shell.ip.user_ns["ran"]) == 8
    lines = [line for line in shell.out.texts().splitlines() if line.startswith("⚠")]
    assert lines == [
        "⚠ 🔧 The model asked for 5,000 tool calls in one round; ran the first 8 and "
        "skipped 4,992 (limit 8 per round, OLLAMA_NB_TOOL_MAX_CALLS)."
    ]
    assert "Traceback" not in shell.out.texts()


def test_an_unknown_function_and_bad_arguments_are_one_line_each(shell: Shell) -> None:
    shell.run(DEFINE)
    shell.run(
        '%%chat -m llama3.2 --tools add\n<<call rm_rf {"path": "/"}>> <<call add {"a": "x"}>>'
    )
    texts = shell.out.texts()
    assert "⚠ 🔧 rm_rf(path='/') refused: Error: there is no tool called 'rm_rf'." in texts
    assert "🔧 add(a='x') refused: Error: invalid arguments (a:" in texts
    assert "Traceback" not in texts
