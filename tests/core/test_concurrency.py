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
    SHARED_REPROBE_ROUNDS,
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
    max_queue: int | None = None  # Ollama's OLLAMA_MAX_QUEUE: past it, a 503
    rejected: int = 0

    def round(self, controller: ConcurrencyController, *, waiting: int = 5) -> None:
        """One round's worth of finished requests at the controller's current limit."""
        n = controller.limit
        total = n + self.others
        queue = self.service_s * max(0, total - self.slots) / self.slots
        per_request = self.service_s / min(total, self.slots) * total / n
        if self.max_queue is not None and total - self.slots > self.max_queue:
            self.rejected += 1
            controller.server_busy()
            return
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


@dataclass
class _RampingServer(_Server):
    """A server whose queue builds up over a round after the limit grew, as a real one's does.

    Right after a doubling, the requests admitted first find the older ones still running
    and wait only part of a service; only later ones wait a whole one. So the first round
    at a larger limit shows ``ramp`` of the steady-state queue time. After a cut there is
    no such transient: our gate admits the next request only once fewer than the new limit
    are in flight, so it finds no queue of ours at the server.
    """

    ramp: float = 0.25
    previous: int = 0

    def round(self, controller: ConcurrencyController, *, waiting: int = 5) -> None:
        n = controller.limit
        grew, self.previous = n > self.previous, n
        if not grew:
            super().round(controller, waiting=waiting)
            return
        steady = self.service_s * max(0, n - self.slots) / self.slots
        for _ in range(max(2, n)):
            admitted = self.clock.monotonic()
            self.clock.advance(self.service_s / min(n, self.slots))
            controller.observe(
                Observation(
                    admitted_at=admitted, in_flight=n, waiting=waiting,
                    wall_s=self.service_s + self.ramp * steady + 0.001, load_s=0.0,
                    service_s=self.service_s,
                )
            )  # fmt: skip


@pytest.mark.parametrize("slots", [3, 5, 8, 12])
def test_the_transient_after_a_doubling_is_not_taken_for_slots_or_for_a_second_client(
    slots: int,
) -> None:
    # Seen on the stand-in with 8 slots: slow start went 8 -> 16, the first round at 16
    # showed 20 ms of queue time instead of a whole service (80 ms), Little's law said
    # 13 slots, and the next round's queue at 13 was then read as another client.
    clock = ManualClock()
    controller = ConcurrencyController(clock)
    limits = _run(controller, _RampingServer(clock, slots), rounds=REPROBE_ROUNDS + 3)
    assert limits[-4:] == [slots] * 4 and controller.slots == slots
    assert not controller.status().sharing
    assert not any("shar" in d for d in controller.status().decisions)


@pytest.mark.parametrize("slots", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("ramp", [0.0, 0.25, 1.0])
def test_a_step_ramp_never_puts_two_beyond_the_slots_even_while_learning(
    slots: int, ramp: float
) -> None:
    # The Dask broker's promise: a server holds at most one of the cluster's requests
    # beyond its slots. A first round at a new limit may show none of its queue time
    # (ramp 0.0), so only a settled round may step up.
    clock = ManualClock()
    controller = ConcurrencyController(clock, ramp="step")
    server = _RampingServer(clock, slots, ramp=ramp)
    limits = _run(controller, server, rounds=4 * slots + 3 * REPROBE_ROUNDS)
    assert max(limits) <= slots + 1
    assert controller.slots == slots and limits[-1] in (slots, slots + 1)
    assert not controller.status().sharing


def test_a_step_ramp_climbs_one_settled_round_at_a_time() -> None:
    clock = ManualClock()
    controller = ConcurrencyController(clock, ramp="step")
    limits = _run(controller, _Server(clock, slots=4), rounds=10)
    assert limits[:9] == [1, 2, 2, 3, 3, 4, 4, 5, 4]


def test_a_quiet_round_before_a_cut_does_not_prove_the_larger_limit() -> None:
    # Seen in a pool of three: a 1-slot server probed 2, got one row at a time for a
    # round (the pool sent the other rows elsewhere), then queued at 2 and went back to
    # 1. The round after that cut was still booked at 2, so its quiet run at 1 "proved"
    # 2 queue-free, and the next trial of 2 was taken for another client.
    clock = ManualClock()
    controller = ConcurrencyController(clock)
    server = _Server(clock, slots=1)
    server.round(controller)
    assert controller.limit == 2
    for _ in range(2):  # one request at a time, nothing waiting: says nothing
        admitted = clock.monotonic()
        clock.advance(server.service_s)
        controller.observe(
            Observation(admitted_at=admitted, in_flight=1, waiting=0,
                        wall_s=server.service_s + 0.001, load_s=0.0,
                        service_s=server.service_s)
        )  # fmt: skip
    assert controller.limit == 2
    limits = _run(controller, server, rounds=3 * REPROBE_ROUNDS)
    assert limits[0] == 1 and limits[-1] == 1 and max(limits) <= 2
    assert not controller.status().sharing
    assert not any("shar" in d for d in controller.status().decisions)


def test_slow_start_never_falls_below_the_limit_it_just_left() -> None:
    # Seen in a pool: a 2-slot server doubled 2 -> 4, the pool kept only 2 or 3 of its
    # rows there while the requests admitted at 4 queued, and Little's law on that
    # mixed round said 1 slot. 2 had just run queue-free with more throughput.
    clock = ManualClock()
    controller = ConcurrencyController(clock)
    server = _Server(clock, slots=2)
    while controller.limit < 4:
        server.round(controller)
    service = server.service_s
    for _ in range(4):
        admitted = clock.monotonic()
        clock.advance(service / 2)
        controller.observe(
            Observation(admitted_at=admitted, in_flight=2, waiting=5,
                        wall_s=2.2 * service, load_s=0.0, service_s=service)
        )  # fmt: skip
    assert controller.limit == 2
    assert _run(controller, server, rounds=REPROBE_ROUNDS - 1)[-1] == 2


def test_slow_start_doubles_on_queue_time_alone_not_on_a_transient_rate() -> None:
    # Seen on an 8-slot stand-in: each round at a doubled limit also waited for the rows
    # admitted before it, so its rate looked no better than the last one's; "throughput
    # flat from 2 to 4" held at 2 and the limit then crept up one step per 8 rounds.
    clock = ManualClock()
    controller = ConcurrencyController(clock)
    server = _Server(clock, slots=8)
    limits = []
    for _ in range(6):
        n = controller.limit
        for _ in range(max(2, n)):
            admitted = clock.monotonic()
            clock.advance(server.service_s / 2)  # the same rate whatever the limit
            queue = server.service_s * max(0, n - server.slots) / server.slots
            controller.observe(
                Observation(admitted_at=admitted, in_flight=n, waiting=5,
                            wall_s=server.service_s + queue + 0.001, load_s=0.0,
                            service_s=server.service_s)
            )  # fmt: skip
        limits.append(controller.limit)
    assert limits[:4] == [2, 4, 8, 16]
    assert limits[-1] == 8 and controller.slots == 8


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


def _learned_alone(slots: int) -> tuple[ConcurrencyController, _Server]:
    clock = ManualClock()
    controller = ConcurrencyController(clock)
    server = _Server(clock, slots)
    _run(controller, server, rounds=REPROBE_ROUNDS)
    assert controller.limit == controller.slots == slots and not controller.status().sharing
    server.max_queue = 2  # from here on, a queue of 3 would be a 503
    return controller, server


def _side_by_side(
    ours: ConcurrencyController,
    our_server: _Server,
    theirs: ConcurrencyController,
    their_server: _Server,
    rounds: int,
) -> list[tuple[int, int]]:
    """Two kernels on one server, each on its own clock, seeing the other's limit in flight."""
    limits = []
    for _ in range(rounds):
        our_server.others = theirs.limit
        our_server.round(ours)
        their_server.others = ours.limit
        their_server.round(theirs)
        limits.append((ours.limit, theirs.limit))
    return limits


def test_a_second_kernel_arriving_settles_both_near_half_with_no_503() -> None:
    ours, our_server = _learned_alone(4)
    clock = ManualClock()
    theirs = ConcurrencyController(clock)  # a new kernel: slow-starts, slots unknown
    their_server = _Server(clock, 4, max_queue=2)
    limits = _side_by_side(ours, our_server, theirs, their_server, rounds=4)
    assert "another client shares the server's 4 slots" in " ".join(ours.status().decisions)
    limits += _side_by_side(ours, our_server, theirs, their_server, rounds=20)
    # Never past the server's slots, and after the first rounds both sit near half:
    # 2 each, with a trial of 3 now and then that queues and goes back.
    assert all(a <= 4 and b <= 4 for a, b in limits)
    settled = limits[4:]
    assert all(1 <= a <= 3 and 1 <= b <= 3 for a, b in settled)
    assert all(a + b <= 4 + 1 for a, b in settled)  # at most one request queued
    assert our_server.rejected == 0 and their_server.rejected == 0
    assert ours.busy == 0 and theirs.busy == 0
    status = ours.status()
    assert status.sharing and status.slots == 4  # the server's slots, not our share
    assert "sharing" in status.reason


def test_the_limit_climbs_back_to_the_slots_when_the_other_client_leaves() -> None:
    ours, our_server = _learned_alone(4)
    clock = ManualClock()
    theirs = ConcurrencyController(clock)
    _side_by_side(ours, our_server, theirs, _Server(clock, 4), rounds=12)
    assert ours.limit <= 3 and ours.status().sharing
    our_server.others = 0  # the other kernel finished its batch
    limits = _run(ours, our_server, rounds=12)
    assert max(limits) == 4 and limits[-1] == 4
    assert limits.index(4) <= 3 * (SHARED_REPROBE_ROUNDS + 1)  # not REPROBE_ROUNDS per step
    assert not ours.status().sharing
    assert "the other client left" in " ".join(ours.status().decisions)
    assert our_server.rejected == 0


def test_a_client_that_never_backs_off_still_leaves_us_a_fair_share() -> None:
    clock = ManualClock()
    controller = ConcurrencyController(clock, known=4)
    server = _Server(clock, slots=4, max_queue=4)
    _run(controller, server, rounds=2)
    server.others = 4  # a greedy client keeps 4 in flight whatever happens
    limits = _run(controller, server, rounds=12)
    assert all(2 <= limit <= 3 for limit in limits)  # half the slots, not starved to 1
    assert limits[-1] == 2
    assert server.rejected == 0


def test_a_single_client_never_thinks_it_shares() -> None:
    for slots in (1, 2, 4, 8):
        clock = ManualClock()
        controller = ConcurrencyController(clock)
        limits = _run(controller, _Server(clock, slots), rounds=4 * REPROBE_ROUNDS)
        assert max(limits) <= max(2 * slots, slots + 1) and limits[-1] == slots
        assert not controller.status().sharing
        assert not any("shar" in d for d in controller.status().decisions)


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
    # No queue time with a backlog waiting: it probed 2, and the waiting row was let in
    # at once (then 4: slow start doubles until queue time appears).
    assert "probing 2" in " ".join(controller.status().decisions)
    assert in_flight[:4] == [1, 1, 2, 2]
