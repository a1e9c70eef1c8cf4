"""A worker's gate for one host: its local slot, then a lease from the scheduler's broker.

The worker's runtime keeps its own gate in front of each host (interactive
requests first, the vision lane, the pool's dispatch at a free slot), sized to
the cluster-wide limit the broker last reported, so one worker may use every
slot while the others are idle. Each admitted request then takes a lease from
the ``SlotBroker`` on the scheduler, which keeps the sum over all workers under
the host's limit, and gives it back with Ollama's timings so the broker's
controller learns the slots.

Threads and loops: the runtime's requests run on its own loop thread; the
worker's comm to the scheduler lives on the worker's event loop. A lease is
asked for by running the RPC on the worker's loop (``run_coroutine_threadsafe``)
and awaiting it from the runtime's loop (``wrap_future``), so neither loop ever
blocks on the other; returns, cancels and 503s are one-way messages put on the
worker's batched stream from its own loop.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..application.ports import Lane, Lease, Priority
from ..infrastructure.clock import SystemClock
from ..infrastructure.gate import SlotGate, server_seconds
from .broker import HostTerms

if TYPE_CHECKING:
    from distributed import Worker


#: Lease numbers, unique in this worker process: the broker knows a lease by (worker, number),
#: and a worker has one gate per host. ``next`` on a count is atomic under the GIL.
_LEASE_NUMBERS = itertools.count(1)


class BrokeredGate(SlotGate):
    """A worker's gate whose every slot also holds a lease from the scheduler's broker."""

    def __init__(self, terms: HostTerms, worker: Worker, *, vision_limit: int = 1) -> None:
        super().__init__(
            SystemClock(), limit=terms.width or terms.known or 1, vision_limit=vision_limit
        )
        self.terms = terms
        self._worker = worker
        # tornado's IOLoop over asyncio: its comms live on this loop (the worker's thread).
        self._worker_loop: asyncio.AbstractEventLoop = worker.loop.asyncio_loop  # type: ignore[attr-defined]

    def retune(self, known: int | None, *, adaptive: bool, ceiling: int, vision_limit: int) -> None:
        """The broker owns the limit; new settings reach it with the next job's terms."""
        self.vision_limit = max(1, vision_limit)

    def server_busy(self) -> None:
        """A 503 from the host: the broker's controller (not a local one) halves the limit."""
        self._send({"op": "ollama_nb_busy", "host": self.terms.host})

    @asynccontextmanager
    async def slot(
        self,
        lane: Lane,
        *,
        model: str | None = None,
        priority: Priority = "interactive",
        concurrency: int | None = None,
    ) -> AsyncIterator[Lease]:
        async with super().slot(
            lane, model=model, priority=priority, concurrency=concurrency
        ) as lease:
            number = next(_LEASE_NUMBERS)
            terms = self.terms
            try:
                grant = await self._on_worker_loop(self._acquire(number, terms, priority))
            except BaseException:
                # Cancelled (or the scheduler is unreachable) while waiting: the lease may be
                # granted anyway, so the broker is told it is not wanted.
                self._send({"op": "ollama_nb_cancel", "lease": number})
                raise
            if grant["answer"] != "granted":
                raise RuntimeError("the slot broker dropped this worker's lease request")
            self._follow(int(grant["limit"]))
            lease.in_flight = int(grant["in_flight"])
            try:
                yield lease
            finally:
                timings = lease.timings
                observed = (
                    None
                    if timings is None
                    else list(server_seconds(timings, self._clock.monotonic() - lease.admitted_at))
                )
                self._send(
                    {
                        "op": "ollama_nb_release",
                        "lease": number,
                        "host": terms.host,
                        "timings": observed,
                        "waiting": self._local_waiting(),
                    }
                )

    async def _acquire(self, number: int, terms: HostTerms, priority: Priority) -> Any:
        return await self._worker.scheduler.ollama_nb_acquire(
            worker=self._worker.address,
            lease=number,
            terms=terms.wire(),
            priority=priority,
            waiting=self._local_waiting(),
        )

    async def _on_worker_loop(self, coro: Any) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._worker_loop)
        return await asyncio.wrap_future(future)

    def _send(self, message: dict[str, Any]) -> None:
        if not self._worker_loop.is_closed():
            self._worker_loop.call_soon_threadsafe(self._send_now, message)

    def _send_now(self, message: dict[str, Any]) -> None:
        stream = self._worker.batched_stream
        if stream.comm is not None and not stream.comm.closed():
            stream.send(message)

    def _local_waiting(self) -> int:
        """Requests for this host held back here (gate queue and the pool's queue)."""
        return self.waiting + self.backlog()

    def _follow(self, limit: int) -> None:
        """Take the broker's current limit as this worker's local one."""
        if limit != self.limit:
            self.resize(limit)
