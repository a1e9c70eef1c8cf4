"""Several Ollama servers used as one: routing, per-server slots, and failover.

Each server (``PoolMember``) keeps its own gateway (connection pool, retries,
circuit breaker) and its own gate and concurrency controller, because every
server has its own slots. A request is routed when it asks for a slot: only to
servers that have the model (``/api/tags``), preferring one where it is already
loaded (``/api/ps``, a cold load costs seconds), then the one with the fewest
outstanding requests per slot. Those lists are cached for a few seconds, so a
batch does not ask before every row.

A server that stops answering is taken out of routing for its breaker's
cool-down; requests still queued for it are routed again, and callers that can
re-run work (a batch row) learn from ``failed()`` whether another server can.

With a single server there is nothing to choose: the pool adds no request and
no await over that server's gate.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

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

    @property
    def host(self) -> str:
        return self.gateway.host

    def load_per_slot(self) -> float:
        return (self.gate.running + self.gate.waiting) / self.gate.limit


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
            member = await self._route(model)
            width = None if concurrency is None else -(-concurrency // self._live_count())
            admission = member.gate.slot(lane, priority=priority, concurrency=width)
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

    async def _route(self, model: str | None) -> PoolMember:
        live = [m for m in self.members if not self._is_down(m)] or list(self.members)
        if model is not None:
            name = ModelName(model).canonical
            await asyncio.gather(*(self._refresh_installed(m) for m in live))
            having = [m for m in live if m.installed is None or name in m.installed]
            self._check_digests(name)
            if having:  # nobody has it: let a server answer with its own 404
                live = having
            await asyncio.gather(*(self._refresh_loaded(m) for m in live))
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
