"""Dashboard: updated by request events (not by polling), status, breaker, queue, close."""

from __future__ import annotations

import pytest

import ollama_nb
from ollama_nb.widgets import Dashboard

from .conftest import Env, dead_url, wait_for


def test_each_finished_request_updates_the_summary_and_the_chart(env: Env) -> None:
    board = Dashboard(runtime=env.runtime, render_interval_s=0.05, history=None)
    wait_for(lambda: "running, version" in board.status.value, "the server check")
    assert "No requests yet" in board.summary.value
    tags_before = len(env.standin.requests("/api/tags"))
    for question in ("one?", "two?", "three?"):
        ollama_nb.chat(question, model="llama3.2")
    wait_for(lambda: "llama3.2:latest" in board.summary.value, "the summary row")
    wait_for(lambda: "3 requests" in board.chart.value, "the chart")
    row = next(f for f in board.figures if f.model == "llama3.2:latest")
    assert row.requests == 3 and row.errors == 0 and row.tokens_out > 0
    assert row.decode_tps_mean is not None and row.latency_p50_s is not None
    assert board.chart.value.count("<polyline") == 2
    assert "circuit breaker <b>closed</b>" in board.status.value
    assert "0 running of 1 slots" in board.queue.value and "3 admitted" in board.queue.value
    # Event-driven: nothing was asked of the server to update the view.
    assert len(env.standin.requests("/api/tags")) == tags_before
    board.close()


def test_a_failed_request_counts_as_an_error(env: Env) -> None:
    board = Dashboard(runtime=env.runtime, render_interval_s=0, history=None)
    env.standin.inject("http_500", path="/api/chat")
    with pytest.raises(ollama_nb.OllamaNbError):
        ollama_nb.chat("boom", model="llama3.2")
    wait_for(lambda: board.figures and board.figures[0].errors == 1, "the error row")
    board.close()


def test_history_from_the_metrics_store_is_read_once_at_open(env: Env) -> None:
    ollama_nb.chat("before the dashboard", model="llama3.2")
    env.runtime.recent._events.clear()  # only the store remembers it now
    board = Dashboard(runtime=env.runtime, render_interval_s=0)
    wait_for(lambda: board.figures, "the stored history")
    assert board.figures[0].model == "llama3.2:latest" and board.figures[0].requests == 1
    board.close()


def test_no_server_shows_the_banner_and_the_open_breaker_later(env: Env) -> None:
    env.runtime.configure(host=dead_url())
    board = Dashboard(runtime=env.runtime, render_interval_s=0, history=None)
    wait_for(lambda: board.banner.level == "error", "the banner")
    assert "Cannot reach the Ollama server" in board.banner.text
    assert "not reachable" in board.status.value
    board.close()


def test_close_unsubscribes_from_the_live_feed(env: Env) -> None:
    board = Dashboard(runtime=env.runtime, render_interval_s=0.05, history=None)
    ollama_nb.chat("seen", model="llama3.2")
    wait_for(lambda: board.events_seen == 1, "the first event")
    board.close()
    assert board._background.active == 0
    ollama_nb.chat("not seen", model="llama3.2")
    assert board.events_seen == 1
