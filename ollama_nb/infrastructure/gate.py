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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..application.ports import Clock, GateStats, Lane


class SlotGate:
    def __init__(self, clock: Clock, *, limit: int = 1, vision_limit: int = 1) -> None:
        if limit < 1 or vision_limit < 1:
            raise ValueError("slot limits must be at least 1")
        self._clock = clock
        self.limit = limit
        self.vision_limit = vision_limit
        self._running = 0
        self._vision_running = 0
        self._waiting = 0
        self._admitted = 0
        self._max_wait_s = 0.0
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def resize(self, limit: int, vision_limit: int | None = None) -> None:
        """Follow the server's slot count (e.g. after the server manager restarts it)."""
        self.limit = max(1, limit)
        if vision_limit is not None:
            self.vision_limit = max(1, vision_limit)

    def _has_room(self, lane: Lane) -> bool:
        if self._running >= self.limit:
            return False
        return lane != "vision" or self._vision_running < self.vision_limit

    @asynccontextmanager
    async def slot(self, lane: Lane) -> AsyncIterator[float]:
        changed = self._condition()
        start = self._clock.monotonic()
        async with changed:
            self._waiting += 1
            try:
                await changed.wait_for(lambda: self._has_room(lane))
            finally:
                self._waiting -= 1
            self._running += 1
            if lane == "vision":
                self._vision_running += 1
            self._admitted += 1
        waited = self._clock.monotonic() - start
        self._max_wait_s = max(self._max_wait_s, waited)
        try:
            yield waited
        finally:
            # Release without awaiting the lock when cancelled mid-release would lose the slot.
            self._running -= 1
            if lane == "vision":
                self._vision_running -= 1
            await asyncio.shield(self._notify())

    async def _notify(self) -> None:
        changed = self._condition()
        async with changed:
            changed.notify_all()

    def stats(self) -> GateStats:
        return GateStats(
            limit=self.limit,
            vision_limit=self.vision_limit,
            running=self._running,
            waiting=self._waiting,
            max_wait_s=self._max_wait_s,
            admitted=self._admitted,
        )
