"""The pool hands each queued batch row to whichever server has a slot free at that moment."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import cast

import pytest

from ollama_nb.application.ports import OllamaGateway
from ollama_nb.infrastructure.gate import SlotGate
from ollama_nb.infrastructure.pool import HostPool, PoolMember
from ollama_nb.testing import ManualClock

pytestmark = pytest.mark.concurrency


class _Host:
    """All the pool needs of a gateway when no model is named: its address."""

    def __init__(self, host: str) -> None:
        self.host = host


def _pool(**slots: int) -> HostPool:
    clock = ManualClock()
    members = [
        PoolMember(gateway=cast(OllamaGateway, _Host(host)), gate=SlotGate(clock, limit=n))
        for host, n in slots.items()
    ]
    return HostPool(clock, members)


async def _holding(pool: HostPool, stack: AsyncExitStack, priority: str = "batch") -> str:
    lease = await stack.enter_async_context(pool.slot("text", priority=priority))  # type: ignore[arg-type]
    assert lease.gateway is not None
    return lease.gateway.host


async def test_a_queued_row_goes_to_the_server_whose_slot_frees_first() -> None:
    pool = _pool(small=1, large=2)
    # Three rows fill every slot: one on the small server, two on the large one.
    held = [AsyncExitStack() for _ in range(3)]
    hosts = [await _holding(pool, stack) for stack in held]
    assert sorted(hosts) == ["large", "large", "small"]
    # A fourth waits in the pool's queue, committed to no server yet.
    queued = asyncio.create_task(_holding(pool, AsyncExitStack()))
    await asyncio.sleep(0)
    assert not queued.done()
    assert all(m.gate.waiting == 0 for m in pool.members)
    # The small server finishes first: the row goes there, not behind the large one.
    await held[hosts.index("small")].aclose()
    assert await queued == "small"
    for stack in held:
        await stack.aclose()


async def test_rows_queued_behind_a_busy_server_are_taken_by_one_that_frees() -> None:
    pool = _pool(a=1, b=1)
    held_a, held_b = AsyncExitStack(), AsyncExitStack()
    assert {await _holding(pool, held_a), await _holding(pool, held_b)} == {"a", "b"}
    stacks = [AsyncExitStack() for _ in range(3)]  # kept: a dropped stack frees its slot
    waiting = [asyncio.create_task(_holding(pool, stack)) for stack in stacks]
    await asyncio.sleep(0)
    first_host = pool.members[0].host
    freed = held_a if first_host == "a" else held_b
    await freed.aclose()  # only one server finishes; it takes the oldest queued row
    done, pending = await asyncio.wait(waiting, timeout=None, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1 and done.pop().result() == first_host
    assert waiting[0].done()  # oldest first
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    assert pool.stats().running == 2  # cancelled rows took and kept no slot
    assert all(m.promised == 0 for m in pool.members)
    for stack in (held_a, held_b, *stacks):
        await stack.aclose()


async def test_an_interactive_request_takes_the_next_free_slot_ahead_of_queued_rows() -> None:
    pool = _pool(a=1, b=1)
    held = {await _holding(pool, stack): stack for stack in (AsyncExitStack(), AsyncExitStack())}
    stacks = [AsyncExitStack() for _ in range(3)]
    rows = [asyncio.create_task(_holding(pool, stack)) for stack in stacks[:2]]
    chat = asyncio.create_task(_holding(pool, stacks[2], priority="interactive"))
    await asyncio.sleep(0)
    assert not chat.done()
    # The chat waits at one server's gate; the rows wait in the pool's queue behind it.
    chat_host = next(m.host for m in pool.members if m.gate.waiting)
    await held[chat_host].aclose()
    assert await chat == chat_host
    assert not any(row.done() for row in rows)  # the freed slot went to the chat, not a row
    for row in rows:
        row.cancel()
    await asyncio.gather(*rows, return_exceptions=True)
    for stack in (*held.values(), *stacks):
        await stack.aclose()
