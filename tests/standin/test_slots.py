"""Parallel slots, the pending queue, disconnects, keep-alive and cold loads."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from ollama_nb.testing import StandinHandle
from ollama_nb.testing.pytest_plugin import StandinFactory

BUSY = "server busy, please try again.  maximum pending requests exceeded"


def _chat(text: str = "a b c d", **extra: object) -> dict[str, object]:
    return {"model": "llama3.2", "stream": False,
            "messages": [{"role": "user", "content": text}], **extra}  # fmt: skip


async def test_queue_overflow_gives_503(ollama_standin_factory: StandinFactory) -> None:
    handle = ollama_standin_factory(num_parallel=1, max_queue=2)
    async with httpx.AsyncClient(base_url=handle.url, timeout=10) as client:
        # A stalled stream holds the only slot for as long as we keep it open.
        holder = asyncio.ensure_future(
            client.post("/api/chat", json=_chat(), headers={"X-Standin-Fault": "stall"})
        )
        await _until(lambda: bool(handle.stats()["running"] == 1))
        queued = [asyncio.ensure_future(client.post("/api/chat", json=_chat())) for _ in range(2)]
        await _until(lambda: bool(handle.stats()["waiting"] == 2))
        rejected = await client.post("/api/chat", json=_chat())
        assert (rejected.status_code, rejected.json()) == (503, {"error": BUSY})
        holder.cancel()  # the client walks away; the queue drains
        results = await asyncio.gather(*queued)
    assert [r.status_code for r in results] == [200, 200]
    stats = handle.stats()
    assert stats["max_waiting_seen"] == 2 and stats["max_running_seen"] == 1
    assert stats["max_in_flight_seen"] == 3


async def test_parallel_slots_run_together(ollama_standin_factory: StandinFactory) -> None:
    handle = ollama_standin_factory(num_parallel=4, max_queue=1)
    stall = {"X-Standin-Fault": "stall"}
    async with httpx.AsyncClient(base_url=handle.url, timeout=10) as client:
        held = [
            asyncio.ensure_future(client.post("/api/chat", json=_chat(), headers=stall))
            for _ in range(4)
        ]
        await _until(lambda: bool(handle.stats()["running"] == 4))
        assert handle.stats()["waiting"] == 0
        fifth = asyncio.ensure_future(client.post("/api/chat", json=_chat()))
        await _until(lambda: bool(handle.stats()["waiting"] == 1))
        for task in held:
            task.cancel()
        assert (await fifth).status_code == 200
    assert handle.stats()["max_running_seen"] == 4


async def test_the_slot_is_free_before_the_final_object_is_written(
    ollama_standin_factory: StandinFactory,
) -> None:
    """As in Ollama's runner: generation ends, the slot frees, then ``done`` is written.

    So a client that has read ``done`` and sends its next request finds the slot free
    instead of queueing behind a reply it already holds (a Dask worker handing its lease
    on at ``done`` relies on this). The stall fault, armed past the reply's last token,
    holds the response exactly between the end of generation and its final object.
    """
    handle = ollama_standin_factory(num_parallel=1, max_queue=4)
    past_the_end = {"X-Standin-Fault": "stall", "X-Standin-Fault-After": "1000"}
    async with httpx.AsyncClient(base_url=handle.url, timeout=10) as client:
        body = _chat(stream=True)
        async with client.stream("POST", "/api/chat", json=body, headers=past_the_end) as held:
            lines = held.aiter_lines()
            assert not json.loads(await anext(lines))["done"]  # generating: the slot is taken
            # The response stays open (its final object is stalled), yet the slot frees;
            # held until the response ended, this wait would never end (pytest-timeout).
            await _until(lambda: bool(handle.stats()["running"] == 0))
            second = await client.post("/api/chat", json=_chat())
            assert second.status_code == 200
    stats = handle.stats()
    assert stats["max_waiting_seen"] == 0 and stats["max_in_flight_seen"] == 1


_RATE = 20.0  # tokens per second per slot
_LONG = 60  # tokens in each long reply: 3 s at _RATE, so 8 of them surely overlap


def _reply(tokens: int) -> dict[str, object]:
    words = " ".join(f"w{i}" for i in range(tokens))
    return _chat(f"<<reply>>{words}<</reply>>")


def _queue_ns(answer: dict[str, int]) -> int:
    """What Ollama's durations leave over: the time the request waited for a slot."""
    work = answer["load_duration"] + answer["prompt_eval_duration"] + answer["eval_duration"]
    return answer["total_duration"] - work


@pytest.mark.concurrency
@pytest.mark.parametrize("slots", [8, 16])
async def test_every_slot_streams_at_the_full_rate_at_once(
    ollama_standin_factory: StandinFactory, slots: int
) -> None:
    # The stand-in has to sustain P slots for a client's discovery of P to be measurable:
    # P long replies run together, each at the configured rate, and one more request
    # waits for a slot with that wait inside its total_duration (Ollama's scheduler
    # queues beyond OLLAMA_NUM_PARALLEL; clients read queue time from total_duration).
    handle = ollama_standin_factory(num_parallel=slots, tokens_per_second=_RATE)
    limits = httpx.Limits(max_connections=slots + 1)
    async with httpx.AsyncClient(base_url=handle.url, timeout=60, limits=limits) as client:
        long = [
            asyncio.ensure_future(client.post("/api/chat", json=_reply(_LONG)))
            for _ in range(slots)
        ]
        await _until(lambda: bool(handle.stats()["running"] == slots))
        extra = asyncio.ensure_future(client.post("/api/chat", json=_reply(1)))
        await _until(lambda: bool(handle.stats()["waiting"] == 1))
        answers = [(await r).json() for r in long]
        queued = (await extra).json()
    stats = handle.stats()
    assert stats["max_running_seen"] == slots and stats["max_waiting_seen"] == 1
    nominal_ns = (_LONG - 1) / _RATE * 1e9  # first token at once, then one per interval
    for answer in answers:
        assert answer["eval_count"] == _LONG
        # Paced against deadlines: never faster than the rate, and lag does not pile up
        # token after token (a generous bound: a busy loop delays the end, not each step).
        assert nominal_ns <= answer["eval_duration"] < 2 * nominal_ns
        assert _queue_ns(answer) >= 0
    # The extra request waited for one of the long ones to end, and says so.
    assert queued["eval_count"] == 1
    assert _queue_ns(queued) > 0
    assert queued["total_duration"] > _queue_ns(queued)


async def test_disconnect_frees_slot_promptly(ollama_standin_factory: StandinFactory) -> None:
    # The next token would come in 1000 s: only the disconnect can free the slot.
    handle = ollama_standin_factory(num_parallel=1, tokens_per_second=0.001)
    async with httpx.AsyncClient(base_url=handle.url, timeout=10) as client:
        async with client.stream("POST", "/api/chat", json={**_chat(), "stream": True}) as r:
            async for _ in r.aiter_lines():
                break  # one token, then walk away mid-stream
        await _until(lambda: bool(handle.stats()["running"] == 0))


async def test_disconnect_while_queued_leaves_queue(ollama_standin_factory: StandinFactory) -> None:
    handle = ollama_standin_factory(num_parallel=1)
    async with httpx.AsyncClient(base_url=handle.url, timeout=10) as client:
        holder = asyncio.ensure_future(
            client.post("/api/chat", json=_chat(), headers={"X-Standin-Fault": "stall"})
        )
        await _until(lambda: bool(handle.stats()["running"] == 1))
        queued = asyncio.ensure_future(client.post("/api/chat", json=_chat()))
        await _until(lambda: bool(handle.stats()["waiting"] == 1))
        queued.cancel()
        await _until(lambda: bool(handle.stats()["waiting"] == 0))
        holder.cancel()
        await _until(lambda: bool(handle.stats()["running"] == 0))
        assert (await client.post("/api/chat", json=_chat())).status_code == 200


def test_cold_then_warm_then_expired(ollama_standin_factory: StandinFactory) -> None:
    handle = ollama_standin_factory(load_seconds=0.2)
    with httpx.Client(base_url=handle.url, timeout=10) as client:
        cold = client.post("/api/chat", json=_chat(keep_alive="1h")).json()
        warm = client.post("/api/chat", json=_chat(keep_alive="1h")).json()
        assert cold["load_duration"] >= 200_000_000
        assert warm["load_duration"] < cold["load_duration"]
        assert cold["total_duration"] >= cold["load_duration"]
        assert [m["name"] for m in client.get("/api/ps").json()["models"]] == ["llama3.2:latest"]
        client.post("/api/chat", json=_chat(keep_alive=0.2))  # the last request sets the expiry
        _wait_until(lambda: client.get("/api/ps").json()["models"] == [])
        again = client.post("/api/chat", json=_chat()).json()
        assert again["load_duration"] >= 200_000_000


def test_keep_alive_zero_unloads_after_request(client: httpx.Client) -> None:
    assert client.post("/api/chat", json=_chat(keep_alive=0)).status_code == 200
    assert client.get("/api/ps").json()["models"] == []


def test_keep_alive_negative_is_forever(client: httpx.Client) -> None:
    client.post("/api/chat", json=_chat(keep_alive=-1))
    expires = datetime.fromisoformat(client.get("/api/ps").json()["models"][0]["expires_at"])
    assert expires.year > datetime.now(UTC).year + 100


def test_server_default_keep_alive(ollama_standin_factory: StandinFactory) -> None:
    handle = ollama_standin_factory(keep_alive_s=0.0)
    with httpx.Client(base_url=handle.url) as client:
        client.post("/api/chat", json=_chat())
        assert client.get("/api/ps").json()["models"] == []
        client.post("/api/chat", json=_chat(keep_alive="1h"))
        assert len(client.get("/api/ps").json()["models"]) == 1


def test_concurrent_cold_requests_share_one_load(ollama_standin_factory: StandinFactory) -> None:
    handle = ollama_standin_factory(num_parallel=2, load_seconds=0.5)

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=handle.url, timeout=10) as client:
            return list(
                await asyncio.gather(*(client.post("/api/chat", json=_chat()) for _ in "ab"))
            )

    started = time.monotonic()
    responses = asyncio.run(both())
    assert time.monotonic() - started < 0.95  # two separate loads would take 1 s
    assert all(r.json()["load_duration"] >= 450_000_000 for r in responses)


def test_handle_stats_shape(ollama_standin: StandinHandle) -> None:
    stats = ollama_standin.stats()
    assert {
        "running",
        "waiting",
        "max_running_seen",
        "max_waiting_seen",
        "max_in_flight_seen",
        "loaded",
    } <= stats.keys()


async def _until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (it does blocking admin calls, hence the thread) until true.

    The stand-in runs in its own thread and offers no event to wait on; a missing
    state change is caught by pytest-timeout, not by a deadline that a loaded
    machine could miss.
    """
    await asyncio.to_thread(_wait_until, condition)


def _wait_until(condition: Callable[[], bool]) -> None:
    """``_until`` for synchronous tests."""
    while not condition():
        time.sleep(0.01)
