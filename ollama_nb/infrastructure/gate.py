"""The request queue on our side of the wire, for one server.

Ollama runs ``OLLAMA_NUM_PARALLEL`` requests per model at once and queues the
rest (answering 503 once ``OLLAMA_MAX_QUEUE`` is full). Sending more than the
slot count only moves the queue to the server, where we can neither see it, nor
reorder it, nor cancel from it, so we hold the surplus here. Holding it here is
what lets an interactive ``%%chat`` take the next free slot ahead of a batch's
queued rows. Vision requests have their own, smaller lane because image prompt
processing is heavy and would otherwise starve text requests.

How many slots there are is usually not known on this side (the variable is in
the server's environment): a ``ConcurrencyController`` learns it from the
timings of finished requests and sets the limit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ..application.ports import Clock, GateStats, Lane, Lease, OllamaGateway, Priority
from ..domain import Timings
from .concurrency import ConcurrencyController, ControllerStatus, Observation


@dataclass(slots=True)
class _Waiter:
    lane: Lane
    concurrency: int | None  # an explicit width, else the (changing) limit applies
    future: asyncio.Future[None]


class SlotGate:
    """Admission to one server's slots, interactive work first, FIFO within a priority.

    No locks: everything runs on the runtime's loop, so counters change only
    between awaits. A request that fits and has nobody ahead of it is admitted
    without awaiting at all, which keeps the common uncontended case cheap.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        limit: int = 1,
        vision_limit: int = 1,
        controller: ConcurrencyController | None = None,
    ) -> None:
        if limit < 1 or vision_limit < 1:
            raise ValueError("slot limits must be at least 1")
        self._clock = clock
        self._fixed_limit = limit
        self.vision_limit = vision_limit
        self.controller = controller
        self._running = 0
        self._vision_running = 0
        self._admitted = 0
        self._max_wait_s = 0.0
        self._queues: dict[Priority, deque[_Waiter]] = {"interactive": deque(), "batch": deque()}
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Called whenever a slot may have come free (a pool hands it its next queued row).
        self.on_free: Callable[[], None] | None = None
        #: Work queued for this server elsewhere (a pool's queue): demand the limit may serve.
        self.backlog: Callable[[], int] = _nothing

    @property
    def limit(self) -> int:
        """Requests admitted at once: the learned limit, or the fixed one without a controller."""
        return self.controller.limit if self.controller is not None else self._fixed_limit

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._queues["interactive"]) + len(self._queues["batch"])

    def resize(self, limit: int, vision_limit: int | None = None) -> None:
        """Follow a slot count someone knows (e.g. the server manager restarted the server)."""
        self._fixed_limit = max(1, limit)
        if self.controller is not None:
            self.controller.restart(self._fixed_limit)
        if vision_limit is not None:
            self.vision_limit = max(1, vision_limit)
        self._wake_threadsafe()

    def retune(self, known: int | None, *, adaptive: bool, ceiling: int, vision_limit: int) -> None:
        """New concurrency settings: restart the controller from ``known`` slots (or pin them)."""
        self.vision_limit = max(1, vision_limit)
        if self.controller is None:
            self._fixed_limit = max(1, known or 1)
        else:
            self.controller.ceiling = ceiling
            self.controller.restart(known, adaptive=adaptive)
        self._wake_threadsafe()

    def _wake_threadsafe(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            # Maybe called from the kernel's thread: waiters may only be woken on their loop.
            self._loop.call_soon_threadsafe(self._wake)

    def _has_room(self, lane: Lane, concurrency: int | None) -> bool:
        return self.room(lane, concurrency) > 0

    def room(self, lane: Lane, concurrency: int | None = None, *, taken: int = 0) -> int:
        """Slots free right now for ``lane``, ``taken`` of them already promised elsewhere."""
        free = max(self.limit, concurrency or 0) - self._running - taken
        if lane == "vision":
            free = min(free, self.vision_limit - self._vision_running - taken)
        return max(0, free)

    def _admit(self, lane: Lane) -> None:
        self._running += 1
        if lane == "vision":
            self._vision_running += 1
        self._admitted += 1

    def _release(self, lane: Lane) -> None:
        self._running -= 1
        if lane == "vision":
            self._vision_running -= 1
        self._wake()

    def _wake(self) -> None:
        """Admit waiters, interactive ones first; one that does not fit is skipped."""
        for queue in self._queues.values():
            for waiter in list(queue):
                if waiter.future.done():
                    queue.remove(waiter)
                elif self._has_room(waiter.lane, waiter.concurrency):
                    queue.remove(waiter)
                    self._admit(waiter.lane)
                    waiter.future.set_result(None)
        if self.on_free is not None:
            self.on_free()

    def server_busy(self) -> None:
        """The server answered 503: let the controller cut the limit."""
        if self.controller is not None:
            self.controller.server_busy()

    @asynccontextmanager
    async def slot(
        self,
        lane: Lane,
        *,
        model: str | None = None,
        priority: Priority = "interactive",
        concurrency: int | None = None,
    ) -> AsyncIterator[Lease]:
        start = self._clock.monotonic()
        self._loop = asyncio.get_running_loop()
        ahead = bool(self._queues["interactive"]) if priority == "interactive" else self.waiting > 0
        if not ahead and self._has_room(lane, concurrency):
            self._admit(lane)
        else:
            waiter = _Waiter(lane, concurrency, self._loop.create_future())
            self._queues[priority].append(waiter)
            self._wake()
            try:
                await waiter.future
            except BaseException:
                if waiter.future.done() and not waiter.future.cancelled():
                    self._release(lane)  # admitted just as we were cancelled
                elif waiter in self._queues[priority]:
                    self._queues[priority].remove(waiter)
                raise
        admitted_at = self._clock.monotonic()
        waited = admitted_at - start
        self._max_wait_s = max(self._max_wait_s, waited)
        lease = Lease(waited_s=waited, in_flight=self._running, admitted_at=admitted_at)
        try:
            yield lease
        finally:
            self._learn(lease, concurrency)
            self._release(lane)

    def _learn(self, lease: Lease, concurrency: int | None) -> None:
        timings = lease.timings
        if self.controller is None or timings is None or concurrency is not None:
            return  # an explicit width is the caller's choice, not the server's capacity
        before = self.limit
        wall, load, service = server_seconds(timings, self._clock.monotonic() - lease.admitted_at)
        self.controller.observe(
            Observation(
                admitted_at=lease.admitted_at,
                in_flight=lease.in_flight,
                waiting=self.waiting + self.backlog(),
                wall_s=wall,
                load_s=load,
                service_s=service,
            )
        )
        if self.limit > before:
            self._wake()

    def controller_status(self) -> ControllerStatus | None:
        return self.controller.status() if self.controller is not None else None

    def stats(self) -> GateStats:
        return GateStats(
            limit=self.limit,
            vision_limit=self.vision_limit,
            running=self._running,
            waiting=self.waiting,  # len() is safe from other threads; iteration is not
            max_wait_s=self._max_wait_s,
            admitted=self._admitted,
        )

    def failed(self, host: str) -> bool:
        """One server alone has nowhere else to send work."""
        return False

    def gateways(self) -> list[OllamaGateway]:
        return []


def _nothing() -> int:
    return 0


def server_seconds(timings: Timings, since_admitted_s: float) -> tuple[float, float, float]:
    """(wall, load, service) seconds of one request, as a controller's ``Observation`` takes them.

    A Dask worker's gate sends the same three to the scheduler's slot broker, so
    the cluster's controller learns from exactly what a kernel's own would.
    """
    wall = _time_at_server(timings) or timings.latency_s or since_admitted_s
    return wall, timings.load_s, (timings.prompt_eval_ns + timings.eval_ns) / 1e9


def _time_at_server(timings: Timings) -> float:
    """Ollama's ``total_duration``: arrival to last token, measured by the server itself.

    It includes the wait for a slot but not the network or our own event loop,
    so queue time read from it is not blurred by a busy client.
    """
    return timings.total_s
