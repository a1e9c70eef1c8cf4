"""The response cache in batches: a re-run sends nothing, a new digest sends everything."""

from __future__ import annotations

import logging
import sqlite3

import pandas as pd
import pytest

import ollama_nb
from ollama_nb.batch import SUMMARY_KEY
from ollama_nb.domain import RequestEvent
from ollama_nb.infrastructure.response_cache import CACHE_DB_NAME, checksum
from ollama_nb.runtime import Runtime
from ollama_nb.testing import StandinHandle

from .conftest import chat_prompts

GREEDY = {"temperature": 0}


class Collected:
    """A metrics sink that keeps every event."""

    def __init__(self) -> None:
        self.events: list[RequestEvent] = []

    def record(self, event: RequestEvent) -> None:
        self.events.append(event)


def test_a_batch_run_twice_sends_nothing_the_second_time(
    ollama_standin: StandinHandle, runtime: Runtime, reviews: pd.DataFrame
) -> None:
    first = reviews.ollama.chat("Sentiment of: {review}", options=GREEDY, progress=False)
    assert len(chat_prompts(ollama_standin)) == 4
    assert not first["cached"].any() and (first["status"] == "ok").all()
    ollama_standin.reset()

    second = reviews.ollama.chat("Sentiment of: {review}", options=GREEDY, progress=False)

    assert chat_prompts(ollama_standin) == []
    assert second["cached"].all() and (second["status"] == "cached").all()
    assert second["response"].tolist() == first["response"].tolist()
    assert second["eval_tokens"].tolist() == first["eval_tokens"].tolist()
    # No speed is claimed for an answer nobody computed this time.
    assert second["latency_s"].isna().all() and second["tokens_per_s"].isna().all()
    summary = second.attrs[SUMMARY_KEY]
    assert summary["cached"] == 4 and summary["ok"] == 0 and summary["eval_tokens"] == 0


def test_a_model_with_a_new_digest_misses_every_row(
    ollama_standin: StandinHandle, runtime: Runtime, reviews: pd.DataFrame
) -> None:
    reviews.ollama.chat("Sentiment of: {review}", options=GREEDY, progress=False)
    ollama_standin.reset()
    before = {m.name: m.digest for m in ollama_nb.models()}["llama3.2:latest"]
    # Same name, other weights: what a re-pull of an updated model does to the digest.
    ollama_nb.copy("qwen3:0.6b", "llama3.2:latest")
    after = {m.name: m.digest for m in ollama_nb.models()}["llama3.2:latest"]
    assert after != before

    again = reviews.ollama.chat("Sentiment of: {review}", options=GREEDY, progress=False)

    assert len(chat_prompts(ollama_standin)) == 4
    assert not again["cached"].any()


def test_sampled_requests_are_kept_only_when_asked(
    ollama_standin: StandinHandle, runtime: Runtime, reviews: pd.DataFrame
) -> None:
    for _ in range(2):
        reviews.ollama.chat("Say: {review}", progress=False)
    assert len(chat_prompts(ollama_standin)) == 8  # temperature unset: sampled, never kept
    ollama_standin.reset()
    for _ in range(2):
        out = reviews.ollama.chat("Say: {review}", cache=True, progress=False)
    assert len(chat_prompts(ollama_standin)) == 4
    assert out["cached"].all()
    ollama_standin.reset()
    out = reviews.ollama.chat("Say: {review}", cache=False, progress=False)
    assert len(chat_prompts(ollama_standin)) == 4 and not out["cached"].any()


def test_a_tampered_entry_is_a_miss_never_served(
    ollama_standin: StandinHandle,
    runtime: Runtime,
    reviews: pd.DataFrame,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = reviews.ollama.chat("Sentiment of: {review}", options=GREEDY, progress=False)
    path = runtime.settings.data_dir / CACHE_DB_NAME
    with sqlite3.connect(path) as db:
        keys = [k for (k,) in db.execute("SELECT key FROM entries ORDER BY key")]
        # One reply rewritten (checksum no longer matches), one made to claim another digest,
        # one that is not JSON at all even though its checksum is recomputed.
        db.execute(
            "UPDATE entries SET reply = replace(reply, 'text', 'txet') WHERE key = ?", (keys[0],)
        )
        db.execute("UPDATE entries SET digest = 'sha256:other' WHERE key = ?", (keys[1],))
        digest = db.execute("SELECT digest FROM entries WHERE key = ?", (keys[2],)).fetchone()[0]
        db.execute(
            "UPDATE entries SET reply = '<script>', checksum = ? WHERE key = ?",
            (checksum(keys[2], digest, "<script>"), keys[2]),
        )
    ollama_standin.reset()

    with caplog.at_level(logging.WARNING, logger="ollama_nb"):
        second = reviews.ollama.chat("Sentiment of: {review}", options=GREEDY, progress=False)

    assert caplog.text.count("failed its checks") == 3
    assert len(chat_prompts(ollama_standin)) == 3
    assert second["cached"].sum() == 1
    assert second["response"].tolist() == first["response"].tolist()
    assert runtime.responses.stats().bad == 3


def test_hits_are_recorded_as_cached_and_kept_out_of_speed_figures(
    ollama_standin: StandinHandle, runtime: Runtime, reviews: pd.DataFrame
) -> None:
    seen = Collected()
    runtime.add_sink(seen)
    for _ in range(2):
        reviews.ollama.chat("Sentiment of: {review}", options=GREEDY, progress=False)
    statuses = [e.status for e in seen.events if e.kind == "chat"]
    assert statuses.count("ok") == 4 and statuses.count("cached") == 4
    cached = [e for e in seen.events if e.status == "cached"]
    assert all(e.timings.latency_s is None and e.timings.eval_ns == 0 for e in cached)
    # %ollama metrics: hits counted apart, and neither their tokens nor their speed claimed.
    runtime.telemetry.flush()
    table = ollama_nb.summary(runtime=runtime).loc["llama3.2:latest"]
    computed = sum(e.timings.eval_count for e in seen.events if e.status == "ok")
    assert table["requests"] == 8 and table["cached"] == 4
    assert table["tokens_out"] == computed


def test_embeddings_are_kept_when_asked_and_only_the_new_texts_are_sent(
    ollama_standin: StandinHandle, runtime: Runtime
) -> None:
    frame = pd.DataFrame({"text": ["alpha", "beta", "gamma"]})
    first = frame.ollama.embed("text", model="nomic-embed-text", cache=True, progress=False)
    sent = [e["body"]["input"] for e in ollama_standin.requests("/api/embed")]
    assert sent == [["alpha", "beta", "gamma"]]
    ollama_standin.reset()
    more = pd.DataFrame({"text": ["gamma", "delta", "alpha"]})
    second = more.ollama.embed("text", model="nomic-embed-text", cache=True, progress=False)
    assert [e["body"]["input"] for e in ollama_standin.requests("/api/embed")] == [["delta"]]
    assert (second.loc[0, "embedding"] == first.loc[2, "embedding"]).all()
    assert (second.loc[2, "embedding"] == first.loc[0, "embedding"]).all()
    summary = second.attrs["ollama_embed"]
    assert summary["cached"] == 2 and summary["ok"] == 1
    ollama_standin.reset()
    frame.ollama.embed("text", model="nomic-embed-text", progress=False)  # not asked: sent
    assert len(ollama_standin.requests("/api/embed")) == 1
