# mypy: disable-error-code="no-untyped-call"
"""The context guard in ``%%chat``: one line before sending, a flag after, big frames summarised."""

from __future__ import annotations

from typing import Any

import pytest

from ollama_nb.presentation.display import ChatReply

from .conftest import Shell


def test_long_prompt_warns_then_flags_truncation(shell: Shell) -> None:
    shell.run('long_text = "word " * 5000')
    shell.run("%ollama config interpolation_max_chars=100000")
    reply = shell.run("%%chat -m llama3.2\nSummarise: {long_text}")
    assert isinstance(reply, ChatReply) and reply.truncated
    texts = shell.out.texts()
    assert "gets a 4,096-token context (Ollama's default)" in texts
    assert "Raise num_ctx" in texts
    assert "The server read 4,096 prompt tokens" in texts
    assert "prompt truncated" in texts


def test_enough_num_ctx_is_quiet(shell: Shell) -> None:
    shell.run('long_text = "word " * 3000')
    shell.run("%ollama config interpolation_max_chars=100000")
    reply = shell.run("%%chat -m llama3.2 -o num_ctx=8192\nSummarise: {long_text}")
    assert not reply.truncated
    assert "context" not in shell.out.texts()


def test_a_large_frame_is_summarised_to_fit_and_says_so(shell: Shell) -> None:
    shell.run(
        "import pandas as pd\nsales = pd.DataFrame({'n': range(5000), 'city': ['Oslo'] * 5000})"
    )
    shell.run("%%chat -m llama3.2\nWhat stands out in {sales}?")
    sent = shell.chat_requests()[-1]["messages"][-1]["content"]
    assert "[sales: 5,000 rows x 2 columns; first and last 10 rows, then describe()]" in sent
    assert "4999" in sent and "describe():" in sent
    assert (
        "too long to send whole; sent its first and last rows and describe()" in shell.out.texts()
    )


def test_a_long_prompt_cell_makes_one_loop_trip_and_asks_api_show_once(
    shell: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk drawn in ollama_nb/README.md: the context check rides in the reply's trip."""
    shell.run('long_text = "word " * 5000')
    shell.run("%ollama config interpolation_max_chars=100000")
    loop = shell.runtime.loop
    trips: list[str] = []
    for name in ("run", "iterate"):
        original = getattr(loop, name)

        def counted(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            trips.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(loop, name, counted)
    for _ in range(2):
        trips.clear()
        reply = shell.run("%%chat -m llama3.2 --new\nSummarise: {long_text}")
        assert isinstance(reply, ChatReply) and reply.truncated  # the check did run
        assert trips == ["iterate"]
    # Capabilities and the context window read one /api/show answer, kept for the model.
    assert len(shell.standin.requests("/api/show")) == 1
