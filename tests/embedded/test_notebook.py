"""The product on the embedded backend: ``%%chat`` streaming, a 20-row batch, metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

import ollama_nb.batch  # noqa: F401  (registers df.ollama)
from ollama_nb.serving import Server
from ollama_nb.testing import StandinHandle
from tests.magics.conftest import Shell, make_shell

from .conftest import NO_LLAMA

pytestmark = NO_LLAMA
MODEL = "gemma3:270m"


@pytest.fixture
def shell(embedded: Server) -> Iterator[Shell]:
    handle = StandinHandle(embedded.url)
    yield from make_shell(embedded.url, handle, default_model=MODEL)
    handle.close()


def test_chat_magic_streams_real_tokens_and_metrics_record_them(shell: Shell) -> None:
    shell.run("%ollama config stream_interval_s=0.01")
    reply = shell.run("%%chat -o 'num_predict=24 temperature=0'\nWrite a sentence about cats.")
    assert reply.text.strip()
    _display_id, updates = shell.out.streamed()
    assert len(updates) >= 2  # the answer was updated in place as tokens arrived
    timings = reply.timings
    assert timings.eval_count == 24 or reply.done_reason == "stop"
    assert timings.decode_tps is not None and timings.decode_tps > 0
    events = [e for e in shell.runtime.recent.snapshot() if e.kind == "chat"]
    assert events and events[-1].timings.decode_tps == timings.decode_tps
    assert events[-1].model == MODEL


def test_status_names_the_embedded_backend(shell: Shell) -> None:
    text = repr(shell.run("%ollama status"))
    assert "embedded: llama.cpp via llama-cpp-python" in text
    assert "not instruction-tuned" in text
    assert f"{MODEL}: answers stop after 128 tokens by default" in text


def test_a_base_model_answer_stops_at_its_default_cap(shell: Shell) -> None:
    reply = shell.run("%%chat -o temperature=0\nThe history of the city of Lyon begins")
    assert (reply.done_reason, reply.timings.eval_count) == ("length", 128)
    longer = shell.run("%%chat -o 'temperature=0 num_predict=140'\nThe history of Paris begins")
    assert (longer.done_reason, longer.timings.eval_count) == ("length", 140)


def test_twenty_row_batch_through_the_dataframe_accessor(shell: Shell) -> None:
    frame = pd.DataFrame({"n": range(20)})
    out = frame.ollama.chat(
        "Count from {n}:", model=MODEL, options={"num_predict": 3, "temperature": 0},
        progress=False,
    )  # fmt: skip
    assert list(out["status"]) == ["ok"] * 20
    assert out["eval_tokens"].between(1, 3).all()
    assert (out["tokens_per_s"] > 0).all()
