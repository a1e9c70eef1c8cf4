"""Re-runnable notebooks from the magics: deterministic mode, the cache, %chat MODEL, %ollama use."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.error import UsageError

import ollama_nb.batch  # noqa: F401  (registers df.ollama)
from ollama_nb.domain import InvalidInputError

from .conftest import Shell


def test_deterministic_mode_fixes_the_options_and_a_rerun_is_served_from_the_cache(
    shell: Shell,
) -> None:
    note = repr(shell.run("%ollama deterministic on"))
    assert "temperature 0, seed 42" in note and "OLLAMA_NUM_PARALLEL" in note
    first = shell.run("%%chat llama3.2\nName a colour")
    assert shell.chat_requests()[-1]["options"] == {
        "temperature": 0.0,
        "seed": 42,
        "num_ctx": 4096,
    }
    second = shell.run("%%chat llama3.2\nName a colour")
    assert len(shell.chat_requests()) == 1  # Run All again: nothing sent
    assert second.cached and not first.cached and second.text == first.text
    assert "cached: not sent, no speed measured" in shell.out.texts()

    report = " ".join(repr(shell.run("%ollama cache")).split())
    assert "entries 1" in report and "hit rate 50% (1 hits, 1 misses)" in report
    assert "llama3.2" in report
    assert "1 answers removed" in repr(shell.run("%ollama cache clear"))
    shell.run("%%chat llama3.2\nName a colour")
    assert len(shell.chat_requests()) == 2

    shell.run("%ollama deterministic off")
    shell.run("%%chat llama3.2\nName a colour")
    assert "options" not in shell.chat_requests()[-1]


def test_a_temperature_asked_for_in_deterministic_mode_is_refused(shell: Shell) -> None:
    shell.run("%ollama deterministic on")
    with pytest.raises(InvalidInputError, match="Deterministic mode sends temperature 0"):
        shell.run("%%chat llama3.2 -t 0.7\nhi")
    assert shell.chat_requests() == []


def test_cache_flags_on_chat(shell: Shell) -> None:
    for _ in range(2):
        shell.run("%%chat llama3.2 --cache\nTell me a story")
    assert len(shell.chat_requests()) == 1  # sampled, but kept because asked
    shell.run("%%chat llama3.2 --no-cache -t 0\nTell me a story")
    shell.run("%%chat llama3.2 --no-cache -t 0\nTell me a story")
    assert len(shell.chat_requests()) == 3
    with pytest.raises(UsageError, match="not both"):
        shell.run("%%chat llama3.2 --cache --no-cache\nhi")


def test_deterministic_batches_send_one_row_at_a_time(shell: Shell) -> None:
    frame = pd.DataFrame({"n": range(3)})
    out = frame.ollama.chat("Item {n}", model="llama3.2", deterministic=True, progress=False)
    bodies = shell.chat_requests()
    assert len(bodies) == 3 and all(b["options"]["seed"] == 42 for b in bodies)
    assert not out["cached"].any()
    again = frame.ollama.chat("Item {n}", model="llama3.2", deterministic=True, progress=False)
    assert again["cached"].all() and len(shell.chat_requests()) == 3
    with pytest.raises(InvalidInputError, match="one row at a time"):
        frame.ollama.chat("Item {n}", model="llama3.2", deterministic=True, concurrency=4)


def test_line_chat_takes_its_first_word_as_the_model_when_it_is_one(shell: Shell) -> None:
    shell.run("%chat qwen3:0.6b what is up")
    body = shell.chat_requests()[-1]
    assert body["model"] == "qwen3:0.6b" and body["messages"][-1]["content"] == "what is up"
    shell.run("%chat llama3.2 hello there")
    body = shell.chat_requests()[-1]
    assert body["model"] == "llama3.2" and body["messages"][-1]["content"] == "hello there"
    # Not an installed model: the word is part of the question, asked of the thread's model.
    shell.run("%chat Explain recursion")
    body = shell.chat_requests()[-1]
    assert body["model"] == "llama3.2" and body["messages"][-1]["content"] == "Explain recursion"
    # -m always wins, and then the first word is the question's.
    shell.run("%chat -m llama3.2 qwen3:0.6b is a model")
    body = shell.chat_requests()[-1]
    assert body["model"] == "llama3.2"
    assert body["messages"][-1]["content"] == "qwen3:0.6b is a model"


def test_use_warns_at_once_naming_close_matches(shell: Shell) -> None:
    shell.run("%ollama use llama3")
    text = shell.out.texts()
    assert "llama3 is not installed" in text and "llama3.2:latest" in text
    shell.run("%ollama use gemma3:27b")
    assert "gemma3:4b" in shell.out.texts()
