"""Retry timing and circuit-breaker state changes, driven by a hand-moved clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from ollama_nb.domain import CircuitOpenError
from ollama_nb.infrastructure.gate import SlotGate
from ollama_nb.infrastructure.resilience import CircuitBreaker, RetryPolicy


def test_backoff_grows_exponentially_with_jitter_under_the_cap() -> None:
    policy = RetryPolicy(attempts=5, base_s=0.5, max_s=3.0)
    rng = random.Random(1)
    for retry, ceiling in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert max(delays) <= ceiling
        assert max(delays) > ceiling * 0.8  # jitter spans the range, not a fixed value
        assert min(delays) < ceiling * 0.2


def test_breaker_opens_after_threshold_and_half_opens_after_cooldown(clock: Any) -> None:
    breaker = CircuitBreaker("http://h", clock, threshold=3, cooldown_s=10)
    for _ in range(2):
        breaker.before_request()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.before_request()
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError, match="Not trying again for 10 s"):
        breaker.before_request()
    clock.advance(10)
    assert breaker.state == "half_open"
    breaker.before_request()  # the single trial
    with pytest.raises(CircuitOpenError):
        breaker.before_request()  # a second caller during the trial fails fast
    breaker.record_failure()
    assert breaker.state == "open"
    clock.advance(10)
    breaker.before_request()
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.consecutive_failures == 0


def test_success_resets_the_failure_count(clock: Any) -> None:
    breaker = CircuitBreaker("http://h", clock, threshold=2, cooldown_s=10)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"


async def test_gate_admits_only_the_limit_and_counts_waiting(clock: Any) -> None:
    gate = SlotGate(clock, limit=2, vision_limit=1)
    inside = 0
    peak = 0
    release = asyncio.Event()

    async def worker() -> None:
        nonlocal inside, peak
        async with gate.slot("text"):
            inside += 1
            peak = max(peak, inside)
            await release.wait()
            inside -= 1

    tasks = [asyncio.create_task(worker()) for _ in range(5)]
    await _until(lambda: gate.stats().waiting == 3)
    stats = gate.stats()
    assert (stats.running, stats.waiting) == (2, 3)
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 2
    assert gate.stats().admitted == 5
    assert gate.stats().running == 0


async def test_vision_lane_is_narrower_but_shares_the_total(clock: Any) -> None:
    gate = SlotGate(clock, limit=2, vision_limit=1)
    async with gate.slot("vision"):
        blocked = asyncio.create_task(_enter(gate, "vision"))
        await _until(lambda: gate.stats().waiting == 1)
        assert not blocked.done()  # second vision request waits
        async with gate.slot("text"):  # a text request still gets the other slot
            assert gate.stats().running == 2
    await asyncio.wait_for(blocked, 1)


async def test_cancelled_waiter_does_not_leak_a_slot(clock: Any) -> None:
    gate = SlotGate(clock, limit=1)
    async with gate.slot("text"):
        waiter = asyncio.create_task(_enter(gate, "text"))
        await _until(lambda: gate.stats().waiting == 1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert gate.stats().running == 0
    assert gate.stats().waiting == 0
    await asyncio.wait_for(_enter(gate, "text"), 1)


async def _until(condition: Callable[[], bool]) -> None:
    """Let the other tasks step until ``condition`` holds: loop iterations, not time."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the tasks never got there")


async def _enter(gate: SlotGate, lane: str) -> None:
    async with gate.slot(lane):  # type: ignore[arg-type]
        await asyncio.sleep(0)


async def test_resize_from_another_thread_admits_waiters(clock: Any) -> None:
    import threading

    gate = SlotGate(clock, limit=1)
    async with gate.slot("text"):
        waiter = asyncio.create_task(_enter(gate, "text"))
        await _until(lambda: gate.stats().waiting == 1)
        resizer = threading.Thread(target=gate.resize, args=(2,))
        resizer.start()
        resizer.join()
        await asyncio.wait_for(waiter, 1)  # admitted while the first slot is still held
    assert gate.stats().running == 0
