"""The product on the embedded backend's real models: ``%%chat`` with no model named
answers a question, a schema gives a JSON object that validates, embeddings rank a
paraphrase above an unrelated sentence, a 20-row batch, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel

import ollama_nb.batch  # noqa: F401  (registers df.ollama)
from ollama_nb.serving import Server
from ollama_nb.testing import StandinHandle
from tests.magics.conftest import Shell, dead_url, make_shell

from .conftest import NO_LLAMA

pytestmark = NO_LLAMA
MODEL = "smollm2:135m"
DETERMINISTIC = "-o 'temperature=0 seed=7'"


@pytest.fixture
def shell(embedded: Server) -> Iterator[Shell]:
    """A kernel with no default model: every answer below comes from the server's choice."""
    handle = StandinHandle(embedded.url)
    yield from make_shell(embedded.url, handle)
    handle.close()


def test_chat_with_no_model_named_answers_the_question(shell: Shell) -> None:
    reply = shell.run(f"%%chat {DETERMINISTIC}\nWhat is the capital of France? Answer in one word.")
    assert "Paris" in reply.text
    assert reply.done_reason == "stop"  # an instruct model ends its answer by itself
    assert reply.model == MODEL


def test_after_ollama_start_chat_needs_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh machine: no Ollama, no default model; `%ollama start` brings up the embedded
    server (fetching its models into this data folder) and `%%chat` just answers."""
    monkeypatch.setenv("OLLAMA_NB_SERVER_HEALTH_TIMEOUT_S", "240")  # a busy 2-core box
    url = dead_url()
    for shell in make_shell(url, StandinHandle(url), data_dir=tmp_path):
        try:
            started = shell.run("%ollama start")
            assert "Started the embedded server" in str(started)
            reply = shell.run(f"%%chat {DETERMINISTIC}\nWhat is the capital of France?")
            assert "Paris" in reply.text and reply.model == MODEL
        finally:
            shell.run("%ollama stop")


class Capital(BaseModel):
    country: str
    capital: str


def test_a_schema_gives_a_json_object_that_validates(shell: Shell) -> None:
    shell.ip.user_ns["Capital"] = Capital
    reply = shell.run(
        f"%%chat {DETERMINISTIC} --schema Capital\n"
        "Give the country France and its capital city as JSON."
    )
    assert reply.validation_error is None
    assert isinstance(reply.parsed, Capital)
    assert reply.parsed.capital == "Paris"


def _cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def test_embeddings_rank_a_paraphrase_above_an_unrelated_sentence(embedded: Server) -> None:
    import ollama

    texts = [
        "The cat sat on the mat.",
        "A kitten was sitting on the rug.",
        "Quarterly tax filings are due at the end of March.",
    ]
    with ollama.Client(host=embedded.url, timeout=120) as client:
        vectors = client.embed(model="all-minilm", input=texts).embeddings
    assert len(vectors) == 3 and {len(v) for v in vectors} == {384}
    assert _cosine(vectors[0], vectors[1]) > _cosine(vectors[0], vectors[2]) + 0.2
    assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-3  # normalised, as Ollama's are


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
    assert "SmolLM2-135M-Instruct" in text
    assert "answers stop after" not in text  # no cap: an instruct model stops by itself


def test_dataframe_embeddings_on_the_embedded_model(shell: Shell) -> None:
    frame = pd.DataFrame(
        {"text": ["A dog runs in the park.", "A puppy plays outside.", "Tax law."]}
    )
    out = frame.ollama.embed("text", progress=False)
    assert list(out["embedding_error"].isna()) == [True] * 3, list(out["embedding_error"])
    vectors = list(out["embedding"])
    assert len(vectors) == 3 and all(len(v) == 384 for v in vectors)
    assert _cosine(vectors[0], vectors[1]) > _cosine(vectors[0], vectors[2])


def test_twenty_row_batch_through_the_dataframe_accessor(shell: Shell) -> None:
    frame = pd.DataFrame({"n": range(20)})
    out = frame.ollama.chat(
        "Count from {n}:", model=MODEL, options={"num_predict": 3, "temperature": 0},
        progress=False,
    )  # fmt: skip
    assert list(out["status"]) == ["ok"] * 20
    assert out["eval_tokens"].between(1, 3).all()
    assert (out["tokens_per_s"] > 0).all()
