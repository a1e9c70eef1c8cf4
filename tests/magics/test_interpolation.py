"""Prompt references and conversation memory, without a server."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from ollama_nb.application.conversations import Conversation
from ollama_nb.domain import ChatMessage, ChatResult, Timings
from ollama_nb.notebook.interpolation import interpolate, last_traceback


def test_names_cells_and_escapes() -> None:
    ns = {"x": 3, "In": ["", "a = 1", "b = 2"], "Out": {2: [1, 2]}}
    done = interpolate("{x} {In[1]} {Out[2]} {{x}} {In[-1]}", ns)
    assert done.text == "3 a = 1 [1, 2] {x} b = 2"
    assert done.warnings == []


@pytest.mark.parametrize(
    "prompt", ['{"a": 1}', "{x + 1}", "{items[0]}", "f(x) {", "}", "{ x }", "{In[x]}"]
)
def test_other_braces_are_untouched(prompt: str) -> None:
    assert interpolate(prompt, {"x": 1, "items": [1]}).text == prompt


def test_missing_names_and_cells_warn() -> None:
    done = interpolate("{nope} {In[9]} {Out[1]}", {"In": [""], "Out": {}})
    assert done.text == "{nope} {In[9]} {Out[1]}"
    assert len(done.warnings) == 3 and "no variable named 'nope'" in done.warnings[0]


def test_truncation_has_marker_and_warning() -> None:
    done = interpolate("{s}", {"s": "z" * 100}, max_chars=10)
    assert done.text.startswith("z" * 10) and "truncated: 90 of 100" in done.text
    assert "only the first 10 were sent" in done.warnings[0]


def test_dataframe_renders_in_full() -> None:
    frame = pd.DataFrame({"a": range(100)})
    assert "99" in interpolate("{df}", {"df": frame}).text


def test_images_are_collected() -> None:
    done = interpolate("look {img}", {"img": b"bytes"}, is_image=lambda v: isinstance(v, bytes))
    assert done.text == "look [image 1: img]" and done.images == [b"bytes"]


def test_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        empty: dict[str, int] = {}
        empty["missing"]
    except KeyError as exc:
        monkeypatch.setattr(sys, "last_value", exc, raising=False)
        monkeypatch.setattr(sys, "last_traceback", exc.__traceback__, raising=False)
    text = interpolate("why? {traceback}", {}).text
    assert "KeyError: 'missing'" in text and text == "why? " + (last_traceback() or "")
    monkeypatch.setattr(sys, "last_value", None, raising=False)
    assert interpolate("{traceback}", {}, traceback_text=lambda: None).warnings


def _reply(text: str, tokens: int = 0) -> ChatResult:
    return ChatResult(text=text, model="m", timings=Timings(eval_count=tokens))


def test_conversation_replaces_and_budgets() -> None:
    thread = Conversation("t", system="sys")
    for key, text in (("a", "one"), ("b", "two"), ("c", "three")):
        thread.record(key, ChatMessage("user", text), _reply(text.upper(), tokens=10))
    thread.record("b", ChatMessage("user", "TWO!"), _reply("2"))
    assert [t.user.content for t in thread.turns] == ["one", "TWO!", "three"]
    prepared = thread.prepare("d", ChatMessage("user", "four"), budget_tokens=1000)
    assert [m.content for m in prepared.messages][:2] == ["sys", "one"]
    assert prepared.dropped_turns == 0
    tight = thread.prepare("d", ChatMessage("user", "four"), budget_tokens=15)
    assert tight.dropped_turns == 2
    assert [m.content for m in tight.messages] == ["sys", "three", "THREE", "four"]
