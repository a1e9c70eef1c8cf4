"""The context guard against the stand-in, which cuts a prompt to its context as Ollama does.

The stand-in counts one token per word and loads llama3.2 with a 4,096-token
context unless ``num_ctx`` says otherwise; our estimate is 4 characters a token.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import ollama_nb
from ollama_nb.application.context_guard import (
    ContextCheck,
    ContextLengthWarning,
    estimate_request_tokens,
)
from ollama_nb.domain import ChatMessage, ChatRequest, ModelName
from ollama_nb.runtime import Runtime
from ollama_nb.testing import StandinHandle

LONG = "word " * 5000  # 25,000 characters: about 6,250 tokens by our estimate, 5,000 words


def test_estimate_is_documented_arithmetic() -> None:
    request = ChatRequest(
        model=ModelName("llama3.2"),
        messages=(ChatMessage("system", "x" * 40), ChatMessage("user", "y" * 401)),
    )
    # ceil(40/4) + ceil(401/4) text tokens + 4 per message.
    assert estimate_request_tokens(request) == 10 + 101 + 2 * 4


def test_truncation_rule() -> None:
    check = ContextCheck("m", estimate=6000, window=4096, source="Ollama's default")
    assert check.may_not_fit
    assert check.truncated(4096)  # filled the window, far fewer than estimated
    assert not check.truncated(5900)  # the server read about what we estimated
    assert not check.truncated(100)  # a cached prefix, not a cut
    assert not check.truncated(4200)  # more than the window: it was bigger than we thought
    assert not ContextCheck("m", 3000, 4096, "x").truncated(2500)
    assert "num_ctx=8192" in check.warning()


def test_long_prompt_warns_before_and_is_flagged_after(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    with pytest.warns(ContextLengthWarning) as caught:
        reply = ollama_nb.chat(LONG, model="llama3.2")
    before, after = (str(w.message) for w in caught)
    assert before == (
        "This prompt is about 6,254 tokens but llama3.2 gets a 4,096-token context "
        "(Ollama's default): the start may be cut. Raise num_ctx (e.g. options "
        "num_ctx=8192) or the server's OLLAMA_CONTEXT_LENGTH."
    )
    assert reply.timings.prompt_eval_count == 4096
    assert reply.truncated
    assert after.startswith("The server read 4,096 prompt tokens of about 6,254")


def test_enough_num_ctx_neither_warns_nor_flags(runtime: Runtime) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContextLengthWarning)
        reply = ollama_nb.chat(LONG, model="llama3.2", options={"num_ctx": 8192})
    assert reply.timings.prompt_eval_count == 5000
    assert not reply.truncated


def test_server_default_from_the_environment(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_CONTEXT_LENGTH", "2048")
    with pytest.warns(ContextLengthWarning) as caught:
        reply = ollama_nb.generate("word " * 2100, model="llama3.2", options={"num_predict": 1})
    assert "2,048-token context (OLLAMA_CONTEXT_LENGTH)" in str(caught[0].message)
    # This stand-in was not started with it (its context is 4,096): it read all 2,100
    # words, more than the window we assumed, so nothing is flagged.
    assert len(caught) == 1 and not reply.truncated


def test_short_prompts_cost_no_extra_request(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    ollama_nb.chat("hello", model="llama3.2")
    assert ollama_standin.requests("/api/show") == []


def test_batch_has_a_truncated_column(runtime: Runtime) -> None:
    df = pd.DataFrame({"text": ["short one", LONG]})
    out = df.ollama.chat("{text}", model="llama3.2", progress=False)
    assert list(out["truncated"]) == [False, True]
    assert out.attrs["ollama_batch"]["truncated"] == 1
