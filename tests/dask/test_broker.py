"""The scheduler's slot broker, alone on one loop with a manual clock and scripted servers.

No cluster, no wall time: two "workers" ask for leases, the test plays a server
with a known number of slots (queue time appears exactly when more requests are
in flight than it has slots), and every assertion is about the broker's state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from ollama_nb.dask.broker import HostTerms, SlotBroker
from ollama_nb.testing.clock import ManualClock

pytestmark = pytest.mark.concurrency

HOST = "http://server:11434"
SERVICE_S = 1.0


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def settle() -> None:
    """Let every task that can move on do so (a fixed number of loop turns, not a wait)."""
    for _ in range(10):
        await asyncio.sleep(0)


class Cluster:
    """Workers that keep ``depth`` lease requests each outstanding at the broker."""

    def __init__(self, broker: SlotBroker, terms: HostTerms, workers: list[str], depth: int):
        self.broker, self.terms, self.depth = broker, terms, depth
        self.asking: dict[tuple[str, int], asyncio.Task[str]] = {}
        self.numbers = iter(range(1, 1_000_000))
        self.workers = workers

    def top_up(self) -> None:
        for worker in self.workers:
            mine = [k for k, t in self.asking.items() if k[0] == worker and not t.done()]
            for _ in range(self.depth - len(mine)):
                number = next(self.numbers)
                task = asyncio.ensure_future(
                    self.broker.acquire(worker, number, self.terms, waiting=self.depth)
                )
                self.asking[(worker, number)] = task

    def granted(self) -> list[tuple[str, int]]:
        return [k for k, t in self.asking.items() if t.done() and t.result() == "granted"]

    def held(self) -> int:
        return self.broker.leases()[0].in_flight

    def limit(self) -> int:
        return self.broker.leases()[0].limit


def server_seconds(in_flight: int, slots: int) -> tuple[float, float, float]:
    """(wall, load, service) from a server with ``slots``: the surplus waits its turn."""
    queue = SERVICE_S * max(0, in_flight - slots) / slots
    return SERVICE_S + queue, 0.0, SERVICE_S


def test_two_workers_stay_under_the_limit_which_grows_by_the_controllers_rules() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        broker = SlotBroker(clock)
        cluster = Cluster(broker, HostTerms(HOST), ["tcp://w1", "tcp://w2"], depth=4)
        limits: list[int] = []
        served = dict.fromkeys(cluster.workers, 0)
        in_force = 1  # the highest limit while the leases now out were granted (slots unknown)
        for _ in range(40):
            cluster.top_up()
            await settle()
            held = cluster.granted()
            # The bound: never more leases out than the limit in force when they were granted.
            assert cluster.held() == len(held) <= in_force
            limits.append(cluster.limit())
            in_force = cluster.limit()
            clock.advance(SERVICE_S)  # every lease out ran at the server together for 1 s
            for key in held:
                served[key[0]] += 1
                cluster.asking.pop(key)
                broker.release(*key, server_seconds(len(held), slots=3), waiting=4)
                in_force = max(in_force, cluster.limit())
        status = broker.leases()[0].controller
        # Slow start doubles while the server keeps up (1, 2, 4), queue time at 4 in flight
        # on 3 slots says "about 3", and the broker holds there.
        assert limits[0] == 1
        assert 2 in limits and 4 in limits
        assert status.slots == 3
        assert cluster.limit() == 3
        assert max(limits) <= 4  # never above the server's slots + 1
        assert broker.leases()[0].peak <= 4
        # Both workers got leases: FIFO across the cluster starves neither.
        assert min(served.values()) > 0

    run(scenario())


def test_a_removed_workers_leases_come_back_and_a_waiter_gets_one() -> None:
    async def scenario() -> None:
        broker = SlotBroker(ManualClock())
        terms = HostTerms(HOST, known=2)
        first = [asyncio.ensure_future(broker.acquire("tcp://dead", n, terms)) for n in (1, 2)]
        await settle()
        assert [t.result() for t in first] == ["granted", "granted"]
        waiting = asyncio.ensure_future(broker.acquire("tcp://alive", 1, terms))
        dead_waiting = asyncio.ensure_future(broker.acquire("tcp://dead", 3, terms))
        await settle()
        assert not waiting.done() and not dead_waiting.done()
        assert broker.leases()[0].held_by == {"tcp://dead": 2}

        broker.forget_worker("tcp://dead")
        await settle()
        assert waiting.result() == "granted"
        assert dead_waiting.result() == "cancelled"
        assert broker.leases()[0].held_by == {"tcp://alive": 1}
        # A late release from the dead worker changes nothing.
        broker.release("tcp://dead", 1, None)
        assert broker.leases()[0].held_by == {"tcp://alive": 1}

    run(scenario())


def test_a_cancel_returns_a_lease_or_drops_a_waiter_even_when_it_overtakes_the_acquire() -> None:
    async def scenario() -> None:
        broker = SlotBroker(ManualClock())
        terms = HostTerms(HOST, known=1)
        held = asyncio.ensure_future(broker.acquire("tcp://w", 1, terms))
        queued = asyncio.ensure_future(broker.acquire("tcp://w", 2, terms))
        await settle()
        assert held.result() == "granted" and not queued.done()
        broker.cancel("tcp://w", 2)  # stopped waiting
        await settle()
        assert queued.result() == "cancelled"
        broker.cancel("tcp://w", 1)  # granted, then not wanted: returned
        assert broker.leases()[0].in_flight == 0
        broker.cancel("tcp://w", 3)  # arrives before its own acquire
        late = asyncio.ensure_future(broker.acquire("tcp://w", 3, terms))
        await settle()
        assert late.result() == "cancelled"
        assert broker.leases()[0].in_flight == 0

    run(scenario())


def test_interactive_requests_are_granted_before_queued_batch_rows() -> None:
    async def scenario() -> None:
        broker = SlotBroker(ManualClock())
        terms = HostTerms(HOST, known=1)
        first = asyncio.ensure_future(broker.acquire("tcp://a", 1, terms, "batch"))
        await settle()
        rows = [asyncio.ensure_future(broker.acquire("tcp://a", n, terms, "batch")) for n in (2, 3)]
        await settle()
        chat = asyncio.ensure_future(broker.acquire("tcp://b", 1, terms, "interactive"))
        await settle()
        assert first.result() == "granted" and not chat.done()
        broker.release("tcp://a", 1, None)
        await settle()
        assert chat.result() == "granted"
        assert not any(r.done() for r in rows)

    run(scenario())


def test_an_explicit_width_pins_the_bound_and_teaches_the_controller_nothing() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        broker = SlotBroker(clock)
        terms = HostTerms(HOST, width=2)
        asks = [asyncio.ensure_future(broker.acquire("tcp://w", n, terms)) for n in range(1, 6)]
        await settle()
        assert sum(t.done() for t in asks) == 2
        clock.advance(SERVICE_S)
        for n in (1, 2):
            broker.release("tcp://w", n, (SERVICE_S, 0.0, SERVICE_S), waiting=3)
        await settle()
        assert sum(t.done() for t in asks) == 4
        assert broker.leases()[0].in_flight == 2
        assert broker.leases()[0].controller.observed == 0

    run(scenario())


def test_a_503_halves_the_hosts_limit_and_same_settings_keep_what_was_learned() -> None:
    async def scenario() -> None:
        broker = SlotBroker(ManualClock())
        lease = asyncio.ensure_future(broker.acquire("tcp://w", 1, HostTerms(HOST, known=4)))
        await settle()
        assert lease.result() == "granted" and broker.leases()[0].limit == 4
        broker.server_busy(HOST)
        assert broker.leases()[0].limit == 2
        again = asyncio.ensure_future(broker.acquire("tcp://w", 2, HostTerms(HOST, known=4)))
        await settle()
        assert again.result() == "granted"
        assert broker.leases()[0].limit == 2  # the same terms: the controller is not restarted
        other = asyncio.ensure_future(broker.acquire("tcp://w", 3, HostTerms(HOST, known=8)))
        await settle()
        assert other.result() == "granted"
        assert broker.leases()[0].limit == 8  # new settings on the client: start over from them

    run(scenario())
