"""The request queue on our side of the wire.

Ollama runs ``OLLAMA_NUM_PARALLEL`` requests per model at once and queues the
rest (answering 503 once ``OLLAMA_MAX_QUEUE`` is full). Sending more than the
slot count only moves the queue to the server, where we can neither see it nor
cancel from it, so we hold the surplus here. Vision requests have their own,
smaller lane because image prompt processing is heavy and would otherwise starve
text requests.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..application.ports import Clock, GateStats, Lane


class SlotGate:
    """FIFO admission to the server's slots, on one event loop.

    No locks: everything runs on the runtime's loop, so counters change only
    between awaits. A request that fits and has nobody ahead of it is admitted
    without awaiting at all, which keeps the common uncontended case cheap.
    """

    def __init__(self, clock: Clock, *, limit: int = 1, vision_limit: int = 1) -> None:
        if limit < 1 or vision_limit < 1:
            raise ValueError("slot limits must be at least 1")
        self._clock = clock
        self.limit = limit
        self.vision_limit = vision_limit
        self._running = 0
        self._vision_running = 0
        self._admitted = 0
        self._max_wait_s = 0.0
        self._queue: deque[tuple[Lane, asyncio.Future[None]]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    def resize(self, limit: int, vision_limit: int | None = None) -> None:
        """Follow the server's slot count (e.g. after the server manager restarts it)."""
        self.limit = max(1, limit)
        if vision_limit is not None:
            self.vision_limit = max(1, vision_limit)
        if self._loop is not None and not self._loop.is_closed():
            # Called from the kernel's thread: waiters may only be woken on their loop.
            self._loop.call_soon_threadsafe(self._wake)

    def _has_room(self, lane: Lane) -> bool:
        if self._running >= self.limit:
            return False
        return lane != "vision" or self._vision_running < self.vision_limit

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
        """Admit waiters in arrival order; one that does not fit (a full vision lane) is skipped."""
        for entry in list(self._queue):
            lane, future = entry
            if future.done():
                self._queue.remove(entry)
            elif self._has_room(lane):
                self._queue.remove(entry)
                self._admit(lane)
                future.set_result(None)
            if self._running >= self.limit:
                break

    @asynccontextmanager
    async def slot(self, lane: Lane) -> AsyncIterator[float]:
        start = self._clock.monotonic()
        self._loop = asyncio.get_running_loop()
        if not self._queue and self._has_room(lane):
            self._admit(lane)
        else:
            entry: tuple[Lane, asyncio.Future[None]] = (lane, self._loop.create_future())
            self._queue.append(entry)
            self._wake()
            try:
                await entry[1]
            except BaseException:
                if entry[1].done() and not entry[1].cancelled():
                    self._release(lane)  # admitted just as we were cancelled
                elif entry in self._queue:
                    self._queue.remove(entry)
                raise
        waited = self._clock.monotonic() - start
        self._max_wait_s = max(self._max_wait_s, waited)
        try:
            yield waited
        finally:
            self._release(lane)

    def stats(self) -> GateStats:
        return GateStats(
            limit=self.limit,
            vision_limit=self.vision_limit,
            running=self._running,
            waiting=len(self._queue),  # len() is safe from other threads; iteration is not
            max_wait_s=self._max_wait_s,
            admitted=self._admitted,
        )
