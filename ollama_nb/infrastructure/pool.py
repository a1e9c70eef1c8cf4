"""Several Ollama servers used as one: routing, per-server slots, and failover.

Each server (``PoolMember``) keeps its own gateway (connection pool, retries,
circuit breaker) and its own gate and concurrency controller, because every
server has its own slots. Only servers that have the model (``/api/tags``) are
candidates, and one where it is already loaded (``/api/ps``, a cold load costs
seconds) is preferred. Those lists are cached for a few seconds, so a batch does
not ask before every row.

Batch rows wait in one queue of the pool's, not in a server's: a row is handed
to a server only when that server has a slot free at that moment. Routing a row
when it was queued (by load per slot) left rows waiting behind a slow or small
server while another sat idle; dispatching at the free slot gives each server
work in proportion to how fast it finishes it (slots x speed), a server that
finishes early simply takes the next rows, and no row is ever committed to a
server that then dies. Interactive requests are routed at once to the least
loaded server and wait at its gate, ahead of nothing but other interactive
work: they keep their priority lane.

A server that stops answering is taken out of routing for its breaker's
cool-down; requests still queued for it are routed again, and callers that can
re-run work (a batch row) learn from ``failed()`` whether another server can.

With a single server there is nothing to choose: the pool adds no request and
no await over that server's gate.
"""

from __future__ import annotations

import asyncio
import warnings
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from ..application.ports import Clock, GateStats, Lane, Lease, OllamaGateway, Priority
from ..domain import (
    ConnectionLostError,
    ModelName,
    ModelNotFoundError,
    OllamaNbError,
    ServerUnavailableError,
)
from .concurrency import ControllerStatus
from .gate import SlotGate

#: Seconds an installed-models list is trusted (models are rarely pulled mid-batch).
TAGS_TTL_S = 30.0
#: Seconds a loaded-models list is trusted (what is loaded changes with every cold load).
PS_TTL_S = 5.0


class PoolWarning(UserWarning):
    """Something about the pool's servers the user should know (e.g. differing model digests)."""


@dataclass(slots=True)
class PoolMember:
    """One server of the pool: its gateway, its gate, and what routing knows about it."""

    gateway: OllamaGateway
    gate: SlotGate
    down_until: float = 0.0
    installed: dict[str, str] | None = None  # canonical name -> digest
    installed_at: float = -1e18
    loaded: frozenset[str] = frozenset()
    loaded_at: float = -1e18
    failures: int = 0
    installing: asyncio.Future[None] | None = None  # the /api/tags request under way
    listing: asyncio.Future[None] | None = None  # the /api/ps request under way
    promised: int = 0  # slots handed to queued rows that have not entered the gate yet

    @property
    def host(self) -> str:
        return self.gateway.host

    def load_per_slot(self) -> float:
        return (self.gate.running + self.gate.waiting + self.promised) / self.gate.limit


@dataclass(slots=True)
class _QueuedRow:
    """A batch request waiting in the pool's queue for any candidate server's free slot."""

    lane: Lane
    concurrency: int | None
    model: str | None
    candidates: list[PoolMember]
    future: asyncio.Future[PoolMember] = field(repr=False)


@dataclass(frozen=True, slots=True)
class HostStatus:
    """One server as ``%ollama status`` and ``%ollama hosts`` show it."""

    host: str
    up: bool
    limit: int
    running: int
    waiting: int
    admitted: int
    controller: ControllerStatus | None
    models: int | None


class HostPool:
    """Implements the ``ConcurrencyGate`` port over one or more servers."""

    def __init__(
        self,
        clock: Clock,
        members: Sequence[PoolMember],
        *,
        down_s: float = 15.0,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        if not members:
            raise ValueError("a pool needs at least one server")
        self._clock = clock
        self.members = list(members)
        self._down_s = down_s
        self._warn = warn or _warn
        self._warned: set[str] = set()  # model names whose digests differ, warned once
        self._queue: deque[_QueuedRow] = deque()

    @property
    def primary(self) -> PoolMember:
        """The first server: catalogue calls (list, show, pull) go there."""
        return self.members[0]

    def member(self, host: str) -> PoolMember | None:
        return next((m for m in self.members if m.host == host), None)

    # --- admission ---------------------------------------------------------------

    @asynccontextmanager
    async def slot(
        self,
        lane: Lane,
        *,
        model: str | None = None,
        priority: Priority = "interactive",
        concurrency: int | None = None,
    ) -> AsyncIterator[Lease]:
        if len(self.members) == 1:
            only = self.members[0]
            async with only.gate.slot(lane, priority=priority, concurrency=concurrency) as lease:
                lease.gateway = only.gateway
                yield lease
            return
        started = self._clock.monotonic()
        while True:
            if priority == "batch":
                member = await self._free_slot(lane, model, concurrency)
                member.promised -= 1  # entering its gate now, with no await in between
            else:
                member = await self._route(model)
            admission = member.gate.slot(
                lane, priority=priority, concurrency=self._width(concurrency)
            )
            lease = await admission.__aenter__()
            if self._is_down(member) and self._live_count(excluding=member):
                await admission.__aexit__(None, None, None)  # it died while we queued
                continue
            break
        lease.gateway = member.gateway
        lease.waited_s = self._clock.monotonic() - started
        try:
            yield lease
        except BaseException as exc:
            if isinstance(exc, ServerUnavailableError | ConnectionLostError):
                self._mark_down(member)
            elif isinstance(exc, ModelNotFoundError) and member.installed and model:
                member.installed.pop(ModelName(model).canonical, None)  # deleted meanwhile
            if not await admission.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            member.failures = 0
            await admission.__aexit__(None, None, None)

    def _width(self, concurrency: int | None) -> int | None:
        """An explicit ``concurrency`` shared out over the live servers."""
        return None if concurrency is None else -(-concurrency // max(1, self._live_count()))

    # --- the pool's queue ----------------------------------------------------------

    async def _free_slot(
        self, lane: Lane, model: str | None, concurrency: int | None
    ) -> PoolMember:
        """Wait in the pool's queue until a candidate server has a slot free; it is promised to us."""
        candidates = await self._candidates(model)
        row = _QueuedRow(
            lane, concurrency, model, candidates, asyncio.get_running_loop().create_future()
        )
        self._queue.append(row)
        for member in self.members:
            # Gates can be replaced (a Dask worker's cluster-wide one): hook each time.
            member.gate.on_free = self._dispatch
            member.gate.backlog = self._backlog
        self._dispatch()
        try:
            return await row.future
        except BaseException:
            if row.future.done() and not row.future.cancelled():
                row.future.result().promised -= 1  # promised just as we were cancelled
                self._dispatch()
            elif row in self._queue:
                self._queue.remove(row)
            raise

    def _backlog(self) -> int:
        return len(self._queue)

    def _dispatch(self) -> None:
        """Hand queued rows, oldest first, to servers with a slot free now."""
        if not self._queue:
            return
        for row in list(self._queue):
            if row.future.done():
                self._queue.remove(row)
                continue
            member = self._free_member(row)
            if member is None:
                continue
            self._queue.remove(row)
            member.promised += 1
            row.future.set_result(member)

    def _free_member(self, row: _QueuedRow) -> PoolMember | None:
        live = [m for m in row.candidates if not self._is_down(m)] or row.candidates
        width = self._width(row.concurrency)
        free = [
            m
            for m in live
            if m.gate.waiting == 0 and m.gate.room(row.lane, width, taken=m.promised) > 0
        ]
        if not free:
            return None
        name = None if row.model is None else ModelName(row.model).canonical
        # Loaded first (a cold load costs seconds), then the least loaded per slot.
        return min(free, key=lambda m: (name not in m.loaded, m.load_per_slot(), -m.gate.limit))

    def gateways(self) -> list[OllamaGateway]:
        return [m.gateway for m in self.members]

    def failed(self, host: str) -> bool:
        member = self.member(host)
        if member is not None:
            self._mark_down(member)
        return self._live_count(excluding=member) > 0

    def _mark_down(self, member: PoolMember) -> None:
        member.failures += 1
        member.down_until = self._clock.monotonic() + self._down_s
        member.loaded = frozenset()

    def _is_down(self, member: PoolMember) -> bool:
        return self._clock.monotonic() < member.down_until

    def _live_count(self, excluding: PoolMember | None = None) -> int:
        return sum(1 for m in self.members if m is not excluding and not self._is_down(m))

    # --- routing -----------------------------------------------------------------

    async def _candidates(self, model: str | None) -> list[PoolMember]:
        """Live servers that have ``model`` (all live ones if none has it, to get their 404)."""
        live = [m for m in self.members if not self._is_down(m)] or list(self.members)
        if model is not None:
            name = ModelName(model).canonical
            await asyncio.gather(*(self._refresh_installed(m) for m in live))
            having = [m for m in live if m.installed is None or name in m.installed]
            self._check_digests(name)
            if having:  # nobody has it: let a server answer with its own 404
                live = having
            await asyncio.gather(*(self._refresh_loaded(m) for m in live))
        return live

    async def _route(self, model: str | None) -> PoolMember:
        live = await self._candidates(model)
        if model is not None:
            name = ModelName(model).canonical
            loaded = [m for m in live if name in m.loaded]
            # A cold load costs seconds; a loaded server is worth a short queue.
            if loaded and min(m.load_per_slot() for m in loaded) < 2.0:
                live = loaded
        return min(live, key=lambda m: (m.load_per_slot(), -m.gate.limit))

    async def _refresh_installed(self, member: PoolMember) -> None:
        if self._clock.monotonic() - member.installed_at >= TAGS_TTL_S:
            member.installed_at = self._clock.monotonic()
            member.installing = asyncio.ensure_future(self._fetch_installed(member))
        if member.installing is not None:
            await asyncio.shield(member.installing)  # one request, however many rows ask

    async def _fetch_installed(self, member: PoolMember) -> None:
        try:
            summaries = await member.gateway.list_models()
        except OllamaNbError:
            self._mark_down(member)
            return
        member.installed = {ModelName(s.name).canonical: s.digest for s in summaries if s.name}

    async def _refresh_loaded(self, member: PoolMember) -> None:
        if self._clock.monotonic() - member.loaded_at >= PS_TTL_S:
            member.loaded_at = self._clock.monotonic()
            member.listing = asyncio.ensure_future(self._fetch_loaded(member))
        if member.listing is not None:
            await asyncio.shield(member.listing)

    async def _fetch_loaded(self, member: PoolMember) -> None:
        try:
            running = await member.gateway.running()
        except OllamaNbError:
            return
        member.loaded = frozenset(ModelName(r.name).canonical for r in running if r.name)

    def _check_digests(self, name: str) -> None:
        if name in self._warned:
            return
        digests = {
            m.host: m.installed[name] for m in self.members if m.installed and m.installed.get(name)
        }
        if len(set(digests.values())) > 1:
            self._warned.add(name)
            listed = ", ".join(f"{host} {digest[:12]}" for host, digest in digests.items())
            self._warn(
                f"The servers in the pool have different models called {name!r} ({listed}): "
                "answers may differ by server. Pull the same version everywhere."
            )

    # --- reporting ---------------------------------------------------------------

    def stats(self) -> GateStats:
        each = [m.gate.stats() for m in self.members]
        return GateStats(
            limit=sum(s.limit for s in each),
            vision_limit=sum(s.vision_limit for s in each),
            running=sum(s.running for s in each),
            waiting=sum(s.waiting for s in each),
            max_wait_s=max(s.max_wait_s for s in each),
            admitted=sum(s.admitted for s in each),
        )

    def hosts(self) -> list[HostStatus]:
        out = []
        for m in self.members:
            s = m.gate.stats()
            out.append(
                HostStatus(
                    host=m.host,
                    up=not self._is_down(m),
                    limit=s.limit,
                    running=s.running,
                    waiting=s.waiting,
                    admitted=s.admitted,
                    controller=m.gate.controller_status(),
                    models=None if m.installed is None else len(m.installed),
                )
            )
        return out


def _warn(message: str) -> None:
    warnings.warn(message, PoolWarning, stacklevel=3)
