"""The batch functions take one typed arguments object, yet show every keyword to the user."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pandas as pd
import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell

import ollama_nb
from ollama_nb.batch import BatchArgs, EmbedArgs, abatch, aembed_column, batch, embed_column
from ollama_nb.runtime import Runtime
from ollama_nb.testing import StandinHandle


@pytest.mark.parametrize(
    ("function", "arguments", "leading"),
    [
        (batch, BatchArgs, ["df", "template"]),
        (abatch, BatchArgs, ["df", "template"]),
        (embed_column, EmbedArgs, ["df", "column"]),
        (aembed_column, EmbedArgs, ["df", "column"]),
    ],
)
def test_help_shows_every_keyword_with_its_default(
    function: object, arguments: type, leading: list[str]
) -> None:
    signature = inspect.signature(function)  # what help(), `batch?` and Shift+Tab show
    names = list(signature.parameters)
    assert names == leading + [f.name for f in fields(arguments)]
    defaults = {f.name: f.default for f in fields(arguments)}
    for name in names[2:]:
        parameter = signature.parameters[name]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert parameter.default == defaults[name]
    assert "Send ``template``" in (inspect.getdoc(batch) or "")


def test_async_twins_stay_coroutine_functions() -> None:
    assert inspect.iscoroutinefunction(abatch) and inspect.iscoroutinefunction(aembed_column)
    assert not inspect.iscoroutinefunction(batch)


def test_a_misspelt_keyword_names_the_function_called() -> None:
    frame = pd.DataFrame({"x": [1]})
    with pytest.raises(TypeError, match=r"^batch\(\): .*'modle'"):
        batch(frame, "{x}", modle="llama3.2")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^embed_column\(\): .*positional"):
        embed_column(frame, "x", "llama3.2")  # type: ignore[misc]


def test_tab_completion_offers_the_keywords() -> None:
    shell = InteractiveShell.instance()
    try:
        shell.user_ns["ollama_nb"] = ollama_nb
        typed = "ollama_nb.batch(df, 'x', concur"
        with provisionalcompleter():
            matches = {c.text for c in shell.Completer.completions(typed, len(typed))}
        assert "concurrency=" in matches
    finally:
        InteractiveShell.clear_instance()


def test_keywords_reach_the_request(runtime: Runtime, ollama_standin: StandinHandle) -> None:
    frame = pd.DataFrame({"q": ["one"]})
    out = batch(frame, "{q}", kind="generate", system="Be brief.", keep_alive="1m", progress=False)
    assert out["status"].tolist() == ["ok"]
    body = ollama_standin.requests("/api/generate")[-1]["body"]
    assert (body["system"], body["keep_alive"], body["model"]) == ("Be brief.", "1m", "llama3.2")
