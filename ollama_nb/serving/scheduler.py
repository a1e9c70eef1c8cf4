"""Parallel slots, the pending queue, and which models are loaded until when.

Mirrors the behaviour a client of Ollama has to live with: ``OLLAMA_NUM_PARALLEL``
generations run per loaded model, everything else waits, and once more than
``OLLAMA_MAX_QUEUE`` requests are waiting the server answers 503. Loaded models expire
``keep_alive`` after their last request, and the next request pays the cold load again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .catalogue import ModelCard

BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
_FOREVER_WALL = timedelta(days=365 * 292)  # what Go prints for now + MaxInt64 nanoseconds
LOAD_OPTIONS = ("num_ctx", "num_gpu", "num_batch", "main_gpu", "use_mmap", "num_thread")
"""Options fixed at load time: changing one between requests reloads the model."""


class ServerBusy(Exception):
    """More than ``max_queue`` requests are already waiting."""


class Slots:
    """A FIFO of waiters in front of ``num_parallel`` slots per model."""

    def __init__(self, num_parallel: int, max_queue: int) -> None:
        self._num_parallel = num_parallel
        self._max_queue = max_queue
        self._running: dict[str, int] = {}
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}
        self.max_waiting_seen = 0
        self.max_running_seen = 0
        #: Most requests held at one moment, running and waiting together: the two maxima
        #: above may come from different moments, so their sum overstates it.
        self.max_in_flight_seen = 0

    @property
    def running(self) -> int:
        """Generations in progress, all models together."""
        return sum(self._running.values())

    @property
    def waiting(self) -> int:
        """Requests queued for a slot, all models together."""
        return sum(len(q) for q in self._waiters.values())

    async def acquire(self, model: str) -> None:
        """Wait for a slot of ``model``; raise :class:`ServerBusy` if the queue is full."""
        queue = self._waiters.setdefault(model, deque())
        if self._running.get(model, 0) < self._num_parallel and not queue:
            self._take(model)
            return
        if self.waiting >= self._max_queue:
            raise ServerBusy(BUSY_MESSAGE)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(fut)
        self.max_waiting_seen = max(self.max_waiting_seen, self.waiting)
        self.max_in_flight_seen = max(self.max_in_flight_seen, self.running + self.waiting)
        try:
            await fut
        except BaseException:
            if fut in queue:
                queue.remove(fut)
            elif fut.done() and not fut.cancelled():
                self.release(model)  # handed a slot just as we were cancelled
            raise

    def _take(self, model: str) -> None:
        self._running[model] = self._running.get(model, 0) + 1
        self.max_running_seen = max(self.max_running_seen, self.running)
        self.max_in_flight_seen = max(self.max_in_flight_seen, self.running + self.waiting)

    def release(self, model: str) -> None:
        """Give the slot to the next waiter, or free it."""
        self._running[model] = self._running.get(model, 1) - 1
        queue = self._waiters.get(model)
        while queue:
            fut = queue.popleft()
            if not fut.done():
                self._take(model)
                fut.set_result(None)
                return

    def reset_peaks(self) -> None:
        """Forget the high-water marks (in-flight counts stay true)."""
        self.max_waiting_seen = self.waiting
        self.max_running_seen = self.running
        self.max_in_flight_seen = self.running + self.waiting


@dataclass(slots=True)
class Loaded:
    """A model in memory: ``expires_at`` is monotonic seconds, ``inf`` while in use."""

    card: ModelCard
    load_options: dict[str, object]
    keep_alive_s: float
    context_length: int
    in_use: int = 0
    ready: bool = False
    expires_at: float = math.inf
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def expires_wall(self) -> datetime:
        """``expires_at`` as wall-clock time for ``/api/ps``."""
        now = datetime.now(UTC)
        remaining = self.keep_alive_s if self.in_use else self.expires_at - time.monotonic()
        if math.isinf(remaining):
            return now + _FOREVER_WALL
        return now + timedelta(seconds=max(0.0, remaining))


class Residency:
    """Bookkeeping of loaded models; engines do the actual loading."""

    def __init__(self) -> None:
        self._loaded: dict[str, Loaded] = {}

    def evict_expired(self) -> list[Loaded]:
        """Drop models whose keep-alive ran out; returns them so engines can unload."""
        now = time.monotonic()
        gone = [e for e in self._loaded.values() if not e.in_use and e.expires_at <= now]
        for entry in gone:
            del self._loaded[entry.card.name]
        return gone

    def get(self, name: str) -> Loaded | None:
        """The loaded entry for a canonical model name."""
        return self._loaded.get(name)

    def put(self, entry: Loaded) -> None:
        """Record a freshly loaded model."""
        self._loaded[entry.card.name] = entry

    def pop(self, name: str) -> Loaded | None:
        """Forget a model (unload request, delete, reload with other options)."""
        return self._loaded.pop(name, None)

    def clear(self) -> list[Loaded]:
        """Forget everything (admin reset)."""
        entries = list(self._loaded.values())
        self._loaded.clear()
        return entries

    def entries(self) -> list[Loaded]:
        """Loaded models, longest remaining keep-alive first (as ``/api/ps`` sorts)."""
        return sorted(self._loaded.values(), key=lambda e: e.expires_wall(), reverse=True)


def load_options(options: Mapping[str, object]) -> dict[str, object]:
    """The subset of request options that decides whether a loaded model can be reused."""
    return {k: options[k] for k in LOAD_OPTIONS if k in options}
