"""The batch functions take one typed arguments object, yet show every keyword to the user."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pandas as pd
import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell

import ollama_nb
from ollama_nb.batch import (
    BatchArgs,
    CompareArgs,
    EmbedArgs,
    abatch,
    aembed_column,
    batch,
    compare,
    embed_column,
)
from ollama_nb.runtime import Runtime
from ollama_nb.testing import StandinHandle


@pytest.mark.parametrize(
    ("function", "arguments", "leading"),
    [
        (batch, BatchArgs, ["df", "template"]),
        (abatch, BatchArgs, ["df", "template"]),
        (embed_column, EmbedArgs, ["df", "column"]),
        (aembed_column, EmbedArgs, ["df", "column"]),
        (compare, CompareArgs, ["df", "models", "template"]),
    ],
)
def test_help_shows_every_keyword_with_its_default(
    function: Callable[..., Any], arguments: type, leading: list[str]
) -> None:
    signature = inspect.signature(function)  # what help(), `batch?` and Shift+Tab show
    names = list(signature.parameters)
    assert names == leading + [f.name for f in fields(arguments)]
    defaults = {f.name: f.default for f in fields(arguments)}
    for name in names[len(leading) :]:
        parameter = signature.parameters[name]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert parameter.default == defaults[name]
    assert "Send ``template``" in (inspect.getdoc(batch) or "")


def test_the_accessor_shows_the_same_keywords_but_kind() -> None:
    frame = pd.DataFrame({"q": ["one"]})
    batch_keywords = list(inspect.signature(batch).parameters)[2:]
    for method, kind_free in (
        (frame.ollama.chat, True),
        (frame.ollama.agenerate, True),
        (frame.ollama.embed, False),
    ):
        keywords = list(inspect.signature(method).parameters)[1:]
        if kind_free:
            assert keywords == [k for k in batch_keywords if k != "kind"]
        else:
            assert keywords == [f.name for f in fields(EmbedArgs)]
    with pytest.raises(TypeError, match=r"^chat\(\): .*'kind'"):
        frame.ollama.chat("{q}", kind="generate")


def test_async_twins_stay_coroutine_functions() -> None:
    assert inspect.iscoroutinefunction(abatch) and inspect.iscoroutinefunction(aembed_column)
    assert not inspect.iscoroutinefunction(batch)


def test_a_misspelt_keyword_names_the_function_called() -> None:
    frame = pd.DataFrame({"x": [1]})
    with pytest.raises(TypeError, match=r"^batch\(\): .*'modle'"):
        batch(frame, "{x}", modle="llama3.2")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^embed_column\(\): .*positional"):
        embed_column(frame, "x", "llama3.2")  # type: ignore[call-arg]


def test_tab_completion_offers_the_keywords() -> None:
    shell = InteractiveShell.instance()
    try:
        shell.user_ns["ollama_nb"] = ollama_nb
        shell.user_ns["df"] = pd.DataFrame({"q": ["one"]})
        for typed in ("ollama_nb.batch(df, 'x', concur", "df.ollama.chat('x', concur"):
            with provisionalcompleter():
                matches = {c.text for c in shell.Completer.completions(typed, len(typed))}
            assert "concurrency=" in matches, typed
    finally:
        InteractiveShell.clear_instance()


def test_keywords_reach_the_request(runtime: Runtime, ollama_standin: StandinHandle) -> None:
    frame = pd.DataFrame({"q": ["one"]})
    out = batch(frame, "{q}", kind="generate", system="Be brief.", keep_alive="1m", progress=False)
    assert out["status"].tolist() == ["ok"]
    body = ollama_standin.requests("/api/generate")[-1]["body"]
    assert (body["system"], body["keep_alive"], body["model"]) == ("Be brief.", "1m", "llama3.2")
