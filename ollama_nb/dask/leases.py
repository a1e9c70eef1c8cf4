"""A cluster-wide bound on requests in flight at one Ollama host.

Every worker process has its own runtime and its own gate, so on their own
eight workers would send eight times what the server can run. Each request
therefore first takes a lease on a ``distributed.Semaphore`` named after the
host, held on the scheduler, then its local slot. The scheduler is the one
place every worker already talks to, its semaphore needs no extra service, and
a worker that dies loses its leases after the lock lease timeout instead of
holding them forever.

Each server of a pool has its own semaphore, sized to that server's slots.
A semaphore's size is fixed when it is created, so the name carries the size
(``ollama_nb:<host>:<slots>``): a new slot count is a new semaphore, and two
computes that agree on the slots share one bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

from distributed import Semaphore

from ..application.ports import Lane, Lease, Priority
from ..infrastructure.clock import SystemClock
from ..infrastructure.gate import SlotGate


@dataclass(frozen=True, slots=True)
class ClusterLeases:
    """Which semaphore bounds a host, and how many leases it has; picklable, sent to workers."""

    host: str
    slots: int

    @property
    def name(self) -> str:
        return f"ollama_nb:{self.host}:{self.slots}"


class LeasedGate(SlotGate):
    """A worker's gate whose every slot also holds a lease on the host's cluster semaphore.

    The local limit equals the cluster bound, so a worker may use every lease
    when the others are idle; the semaphore is what keeps the sum in bounds.
    """

    def __init__(self, leases: ClusterLeases, *, vision_limit: int = 1) -> None:
        super().__init__(SystemClock(), limit=leases.slots, vision_limit=vision_limit)
        self.leases = leases
        self._semaphore = Semaphore(max_leases=leases.slots, name=leases.name)  # type: ignore[no-untyped-call]
        # Waiting for a lease blocks a thread (the semaphore's API is synchronous here);
        # the shared default executor is too small for that and would starve releases.
        self._takers = ThreadPoolExecutor(leases.slots, thread_name_prefix="ollama_nb-lease")
        self._giver = ThreadPoolExecutor(1, thread_name_prefix="ollama_nb-lease-return")

    def retune(self, known: int | None, *, adaptive: bool, ceiling: int, vision_limit: int) -> None:
        """Settings cannot widen a cluster bound: the lease count is its limit."""
        self.vision_limit = max(1, vision_limit)

    @asynccontextmanager
    async def slot(
        self,
        lane: Lane,
        *,
        model: str | None = None,
        priority: Priority = "interactive",
        concurrency: int | None = None,
    ) -> AsyncIterator[Lease]:
        # The local slot first: it bounds how many of this worker's requests can be
        # waiting for a lease, so the threads that wait never outnumber ``_takers``,
        # and giving a lease back has a thread of its own that waiting cannot block.
        async with super().slot(
            lane, model=model, priority=priority, concurrency=concurrency
        ) as lease:
            loop = asyncio.get_running_loop()
            taking = loop.run_in_executor(self._takers, self._semaphore.acquire)
            try:
                await asyncio.shield(taking)
            except asyncio.CancelledError:
                # The lease may still be granted after we stopped waiting: give it back then.
                taking.add_done_callback(self._give_back_if_granted)
                raise
            try:
                yield lease
            finally:
                await asyncio.shield(loop.run_in_executor(self._giver, self._semaphore.release))

    def _give_back_if_granted(self, taking: asyncio.Future[bool]) -> None:
        if not taking.cancelled() and taking.exception() is None and taking.result():
            self._giver.submit(self._semaphore.release)
