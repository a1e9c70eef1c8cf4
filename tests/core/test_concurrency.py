"""The concurrency controller against a simulated server, on a hand-moved clock.

``_Server`` is the arithmetic of a server with ``slots`` parallel slots and a
fixed service time: with ``n`` of our requests in flight (and ``others`` from
another client) each request queues for ``S·(n + others - slots)/slots`` on
average, and ``min(n + others, slots)`` of them finish per ``S``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from ollama_nb.domain import Timings
from ollama_nb.infrastructure.concurrency import (
    REPROBE_ROUNDS,
    ConcurrencyController,
    Observation,
)
from ollama_nb.infrastructure.gate import SlotGate
from ollama_nb.testing import ManualClock

pytestmark = pytest.mark.concurrency


@dataclass
class _Server:
    clock: ManualClock
    slots: int
    service_s: float = 0.2
    others: int = 0  # another client's requests in flight

    def round(self, controller: ConcurrencyController, *, waiting: int = 5) -> None:
        """One round's worth of finished requests at the controller's current limit."""
        n = controller.limit
        total = n + self.others
        queue = self.service_s * max(0, total - self.slots) / self.slots
        per_request = self.service_s / min(total, self.slots) * total / n
        for _ in range(max(2, n)):
            admitted = self.clock.monotonic()
            self.clock.advance(per_request)
            controller.observe(
                Observation(
                    admitted_at=admitted,
                    in_flight=n,
                    waiting=waiting,
                    wall_s=self.service_s + queue + 0.001,
                    load_s=0.0,
                    service_s=self.service_s,
                )
            )


def _run(controller: ConcurrencyController, server: _Server, rounds: int) -> list[int]:
    limits = []
    for _ in range(rounds):
        server.round(controller)
        limits.append(controller.limit)
    return limits


@pytest.mark.parametrize("slots", [1, 2, 3, 4, 6, 8])
def test_discovers_the_servers_slots_from_queue_time(slots: int) -> None:
    clock = ManualClock()
    controller = ConcurrencyController(clock)
    limits = _run(controller, _Server(clock, slots), rounds=REPROBE_ROUNDS)
    assert limits[-1] == slots
    assert controller.slots == slots
    assert controller.status().phase == "holding"
    assert "queue time" in " ".join(controller.status().decisions)


def test_holds_and_reprobes_then_returns_when_one_more_only_queues() -> None:
    clock = ManualClock()
    controller = ConcurrencyController(clock, known=4)
    server = _Server(clock, slots=4)
    limits = _run(controller, server, rounds=REPROBE_ROUNDS + 2)
    assert limits[REPROBE_ROUNDS - 1] == 5  # tried one more after the quiet rounds
    assert limits[-1] == 4  # and came back: 5 only queued
    assert "trying 5" in " ".join(controller.status().decisions)


def test_a_second_client_shrinks_our_share() -> None:
    clock = ManualClock()
    controller = ConcurrencyController(clock, known=8)
    server = _Server(clock, slots=8)
    _run(controller, server, rounds=2)
    assert controller.limit == 8
    server.others = 4  # another process starts its own batch on the same server
    _run(controller, server, rounds=3)
    assert controller.limit <= 5
    assert "another client shares the server" in " ".join(controller.status().decisions)


def test_a_503_halves_at_once_and_once_per_round() -> None:
    clock = ManualClock()
    controller = ConcurrencyController(clock, known=8)
    assert controller.server_busy()
    assert controller.limit == 4
    assert not controller.server_busy()  # the other rejected requests were sent together
    assert controller.limit == 4
    assert controller.busy == 2
    assert "503" in controller.reason


def test_without_a_backlog_the_limit_never_grows() -> None:
    clock = ManualClock()
    controller = ConcurrencyController(clock)
    server = _Server(clock, slots=8)
    for _ in range(10):
        server.round(controller, waiting=0)  # one chat at a time says nothing about capacity
    assert controller.limit == 1


def test_requests_admitted_under_an_older_limit_are_ignored() -> None:
    clock = ManualClock()
    controller = ConcurrencyController(clock)
    before = clock.monotonic()
    clock.advance(1.0)
    controller.server_busy()  # starts a new round now
    for _ in range(5):
        controller.observe(Observation(before, 1, 3, wall_s=5.0, load_s=0.0, service_s=0.1))
    assert controller.limit == 1 and controller.slots is None


def test_fixed_mode_never_moves() -> None:
    clock = ManualClock()
    controller = ConcurrencyController(clock, known=3, adaptive=False)
    _run(controller, _Server(clock, slots=8), rounds=6)
    controller.server_busy()
    assert controller.limit == 3 and controller.phase == "fixed"


# --- the gate: priority lane and explicit width ----------------------------------------


async def _hold(
    gate: SlotGate, release: asyncio.Event, order: list[str], name: str, **kw: object
) -> None:
    async with gate.slot("text", **kw):  # type: ignore[arg-type]
        order.append(name)
        await release.wait()


async def test_interactive_work_takes_the_next_slot_ahead_of_queued_batch_rows() -> None:
    gate = SlotGate(ManualClock(), limit=1)
    order: list[str] = []
    release = asyncio.Event()
    first = asyncio.create_task(_hold(gate, release, order, "row0", priority="batch"))
    await asyncio.sleep(0)
    rows = [
        asyncio.create_task(_hold(gate, release, order, f"row{i}", priority="batch"))
        for i in (1, 2)
    ]
    await asyncio.sleep(0)
    chat = asyncio.create_task(_hold(gate, release, order, "chat"))
    await asyncio.sleep(0)
    assert order == ["row0"] and gate.stats().waiting == 3
    release.set()
    await asyncio.gather(first, *rows, chat)
    assert order == ["row0", "chat", "row1", "row2"]


async def test_explicit_concurrency_admits_past_the_learned_limit() -> None:
    gate = SlotGate(ManualClock(), limit=1, controller=ConcurrencyController(ManualClock()))
    order: list[str] = []
    release = asyncio.Event()
    tasks = [
        asyncio.create_task(_hold(gate, release, order, str(i), priority="batch", concurrency=4))
        for i in range(6)
    ]
    await asyncio.sleep(0)
    assert gate.stats().running == 4 and gate.stats().waiting == 2
    release.set()
    await asyncio.gather(*tasks)


async def test_the_gate_feeds_the_controller_and_widens_for_waiters() -> None:
    clock = ManualClock()
    controller = ConcurrencyController(clock)
    gate = SlotGate(clock, controller=controller)
    service = Timings(prompt_eval_ns=10_000_000, eval_ns=190_000_000, latency_s=0.201)
    in_flight: list[int] = []

    async def row() -> None:
        async with gate.slot("text", priority="batch") as lease:
            in_flight.append(lease.in_flight)
            await asyncio.sleep(0)
            clock.advance(0.2)
            lease.timings = service

    await asyncio.gather(*(row() for _ in range(12)))
    assert controller.observed == 12
    # No queue time with a backlog waiting: it probed 2, and the waiting row was let in.
    assert "probing 2" in " ".join(controller.status().decisions)
    assert max(in_flight) == 2
