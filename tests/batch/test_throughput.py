"""Concurrency, priority and the pool, against real loopback stand-ins.

The servers' slot counts are set only in the servers' configuration (or their
process environment); the client never sees ``OLLAMA_NUM_PARALLEL``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from ollama_nb.application import use_cases
from ollama_nb.domain import ChatMessage, ChatRequest, ModelName
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.testing import StandinHandle
from ollama_nb.testing.process import standin_process
from ollama_nb.testing.pytest_plugin import StandinFactory
from ollama_nb.testing.standin import DEFAULT_INSTALLED

from .conftest import chat_prompts, make_runtime

pytestmark = pytest.mark.concurrency


@pytest.fixture(autouse=True)
def _client_knows_no_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_NUM_PARALLEL", raising=False)
    monkeypatch.delenv("OLLAMA_NB_HOSTS", raising=False)


@pytest.fixture
def use_runtime() -> Iterator[list[Runtime]]:
    made: list[Runtime] = []
    previous = None
    try:
        yield made
    finally:
        for rt in made:
            rt.close()
        set_runtime(previous)


def _runtime(made: list[Runtime], url: str, tmp_path: Path, **settings: object) -> Runtime:
    rt = make_runtime(url, tmp_path, **settings)
    made.append(rt)
    set_runtime(rt)
    return rt


def _texts(n: int) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"item number {i} is fine" for i in range(n)]})


def _wait_for(condition: object, timeout_s: float = 30.0) -> None:
    """Wait for a condition another thread or process makes true (a deadline, not a timing)."""
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


# --- one server --------------------------------------------------------------------------


def test_default_concurrency_discovers_the_servers_slots(
    ollama_standin_factory: StandinFactory, tmp_path: Path, use_runtime: list[Runtime]
) -> None:
    server = ollama_standin_factory(num_parallel=4, tokens_per_second=100)
    rt = _runtime(use_runtime, server.url, tmp_path)
    out = _texts(120).ollama.chat("Classify: {text}", progress=False)
    assert (out["status"] == "ok").all()
    status = rt.gate.controller_status()
    assert status is not None
    assert status.observed == 120  # every reply's durations reached the controller
    # The limit grew past 1 from what the server reported: it ran several of ours at once.
    # How many slots the controller settles on follows from queue times a loaded machine
    # blurs (under --stress it has said 6 for these 4), so the learning itself is checked
    # where the observations are scripted (tests/core/test_concurrency.py) and measured in
    # bench/bench_throughput.py; here the wiring, and the server's own bound.
    assert 2 <= server.stats()["max_running_seen"] <= 4
    assert (out["host"] == server.url).all()


def test_explicit_concurrency_is_honoured_past_the_learned_limit(
    ollama_standin_factory: StandinFactory, tmp_path: Path, use_runtime: list[Runtime]
) -> None:
    server = ollama_standin_factory(num_parallel=4, tokens_per_second=200)
    rt = _runtime(use_runtime, server.url, tmp_path, adaptive_concurrency=False)
    assert rt.gate.limit == 1  # pinned: only `concurrency=` can widen it
    out = _texts(24).ollama.chat("Classify: {text}", concurrency=4, progress=False)
    assert (out["status"] == "ok").all()
    assert server.stats()["max_running_seen"] == 4


def test_503s_halve_the_limit_and_the_batch_reports_them(
    ollama_standin_factory: StandinFactory, tmp_path: Path, use_runtime: list[Runtime]
) -> None:
    server = ollama_standin_factory(num_parallel=1, max_queue=1, tokens_per_second=200)
    # Told (wrongly) that the server has 8 slots: the 503s must bring it down.
    rt = _runtime(use_runtime, server.url, tmp_path, parallel=8, retry_backoff_s=0.02)
    out = _texts(30).ollama.chat("Classify: {text}", retries=8, progress=False)
    assert (out["status"] == "ok").all()
    status = rt.gate.controller_status()
    assert status is not None and status.busy > 0
    assert status.limit <= 2
    assert any("503" in d for d in status.decisions)
    assert out.attrs["ollama_batch"]["busy_retries"] > 0


def test_an_interactive_chat_takes_the_next_slot_ahead_of_queued_rows(
    ollama_standin_factory: StandinFactory, tmp_path: Path, use_runtime: list[Runtime]
) -> None:
    server = ollama_standin_factory(num_parallel=1, tokens_per_second=100)
    rt = _runtime(use_runtime, server.url, tmp_path, adaptive_concurrency=False)
    done = threading.Event()
    frames: list[pd.DataFrame] = []

    def run_batch() -> None:
        frames.append(_texts(30).ollama.chat("Row: {text}", progress=False))
        done.set()

    worker = threading.Thread(target=run_batch)
    worker.start()
    _wait_for(lambda: len(server.requests("/api/chat")) >= 3)
    sent_before = len(server.requests("/api/chat"))
    request = ChatRequest(
        model=ModelName("llama3.2"), messages=(ChatMessage("user", "interactive"),)
    )
    rt.run(lambda ports: use_cases.complete(ports, request))
    worker.join(60)
    assert done.is_set() and (frames[0]["status"] == "ok").all()
    prompts = chat_prompts(server)
    position = prompts.index("interactive")
    # Only the row already on the server (and one admitted as the chat was issued) went first.
    assert position <= sent_before + 1
    assert len(prompts) - position - 1 > 10  # many queued rows went after it


# --- a pool of servers ---------------------------------------------------------------------


def test_the_pool_routes_only_to_servers_that_have_the_model(
    ollama_standin_factory: StandinFactory, tmp_path: Path, use_runtime: list[Runtime]
) -> None:
    without_qwen = tuple(c for c in DEFAULT_INSTALLED if not c.name.startswith("qwen3"))
    a = ollama_standin_factory(models=without_qwen, num_parallel=2)
    b = ollama_standin_factory(num_parallel=2)
    _runtime(use_runtime, a.url, tmp_path, hosts=[a.url, b.url])
    out = _texts(12).ollama.chat("Classify: {text}", model="qwen3:0.6b", progress=False)
    assert (out["status"] == "ok").all(), out["error"].dropna().tolist()[:2]
    assert set(out["host"]) == {b.url}
    assert a.requests("/api/chat") == []


def test_the_pool_prefers_a_server_where_the_model_is_loaded(
    ollama_standin_factory: StandinFactory, tmp_path: Path, use_runtime: list[Runtime]
) -> None:
    a = ollama_standin_factory()
    b = ollama_standin_factory()
    b.inject  # noqa: B018  (b is the one we warm)
    rt = _runtime(use_runtime, a.url, tmp_path, hosts=[a.url, b.url])
    warm = ChatRequest(model=ModelName("llama3.2"), messages=(ChatMessage("user", "warm"),))
    gateway = rt.pool.member(b.url)
    assert gateway is not None
    rt.run(lambda ports: _drain(gateway.gateway.chat(warm, stream=False)))
    request = ChatRequest(model=ModelName("llama3.2"), messages=(ChatMessage("user", "which?"),))
    for _ in range(3):
        result = rt.run(lambda ports: use_cases.complete(ports, request))
        assert result.host == b.url
    assert a.requests("/api/chat") == []


async def _drain(chunks: object) -> None:
    async for _ in chunks:  # type: ignore[attr-defined]
        pass


def test_a_dying_server_loses_no_row_and_answers_each_row_once(
    tmp_path: Path, use_runtime: list[Runtime]
) -> None:
    slow = {"OLLAMA_NUM_PARALLEL": "2", "OLLAMA_NB_STANDIN_TOKENS_PER_SECOND": "50"}
    with standin_process(slow) as doomed, standin_process(slow) as survivor:
        rt = _runtime(
            use_runtime, doomed.url, tmp_path, hosts=[doomed.url, survivor.url], retry_attempts=1
        )
        frames: list[pd.DataFrame] = []
        worker = threading.Thread(
            target=lambda: frames.append(_texts(40).ollama.chat("Row: {text}", progress=False))
        )
        worker.start()
        doomed_admin = StandinHandle(doomed.url)
        _wait_for(lambda: len(doomed_admin.requests("/api/chat")) >= 4)
        doomed_admin.close()
        doomed.kill()
        worker.join(120)
        out = frames[0]
        assert (out["status"] == "ok").all(), out["error"].dropna().tolist()[:3]
        assert len(out) == 40 and out["response"].notna().all()
        assert out.attrs["ollama_batch"]["rerouted"] > 0
        assert survivor.url in set(out["host"])
        survivor_admin = StandinHandle(survivor.url)
        prompts = chat_prompts(survivor_admin)
        survivor_admin.close()
        assert len(prompts) == len(set(prompts))  # no row answered twice
        assert rt.pool.hosts()[0].up is False
