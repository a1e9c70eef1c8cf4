"""The seams between use cases and the outside world.

Each Protocol here has a real adapter in ``infrastructure`` and, where tests
need it, a fake; nothing else in ``application`` knows about HTTP, threads,
files or Pillow.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

from ..domain import (
    ChatChunk,
    ChatRequest,
    EmbedRequest,
    EmbedResult,
    GenerateRequest,
    ModelInfo,
    ModelName,
    ModelSummary,
    PullProgress,
    RequestEvent,
    RunningModel,
    Timings,
)
from ..domain.images import PreparedImage

Lane: TypeAlias = Literal["text", "vision"]
#: Interactive work (magics, widgets, the API) is admitted ahead of queued batch rows.
Priority: TypeAlias = Literal["interactive", "batch"]


#: A gateway's circuit breaker: ``open`` refuses at once, ``half_open`` lets one trial through.
BreakerState: TypeAlias = Literal["closed", "open", "half_open"]


class OllamaGateway(Protocol):
    """One Ollama server, spoken to through its REST API."""

    @property
    def host(self) -> str: ...

    @property
    def breaker_state(self) -> BreakerState: ...

    def chat(
        self, request: ChatRequest, *, stream: bool = True
    ) -> AsyncGenerator[ChatChunk, None]: ...

    def generate(
        self, request: GenerateRequest, *, stream: bool = True
    ) -> AsyncGenerator[ChatChunk, None]: ...

    async def embed(self, request: EmbedRequest) -> EmbedResult: ...

    async def list_models(self) -> list[ModelSummary]: ...

    async def show(self, model: ModelName) -> ModelInfo: ...

    async def running(self) -> list[RunningModel]: ...

    def pull(self, model: ModelName) -> AsyncGenerator[PullProgress, None]: ...

    async def delete(self, model: ModelName) -> None: ...

    async def copy(self, source: ModelName, destination: ModelName) -> None: ...

    async def version(self) -> str: ...

    async def is_alive(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class GateStats:
    limit: int
    vision_limit: int
    running: int
    waiting: int
    max_wait_s: float
    admitted: int


@dataclass(slots=True)
class Lease:
    """One admitted request's slot on one server.

    ``gateway`` is the server it was routed to (a bare gate, which routes
    nothing, leaves it ``None``). The use case sets ``timings`` once Ollama has
    answered, so the gate can learn the server's slot count from them.
    """

    waited_s: float
    in_flight: int
    admitted_at: float
    gateway: OllamaGateway | None = None
    timings: Timings | None = None

    @property
    def host(self) -> str | None:
        return self.gateway.host if self.gateway is not None else None


class ConcurrencyGate(Protocol):
    """Admits as many requests as the servers run at once; the rest wait here."""

    def slot(
        self,
        lane: Lane,
        *,
        model: str | None = None,
        priority: Priority = "interactive",
        concurrency: int | None = None,
    ) -> AbstractAsyncContextManager[Lease]:
        """Hold a slot for the block on a server that has ``model``.

        ``concurrency`` is a caller's explicit width (``batch(concurrency=N)``):
        admit while fewer than that many run, whatever the learned limit says.
        """
        ...

    def failed(self, host: str) -> bool:
        """Note that ``host`` stopped answering; True if another server can take its work."""
        ...

    def gateways(self) -> list[OllamaGateway]:
        """Every server behind the gate (none for a bare gate, which routes nothing)."""
        ...

    def stats(self) -> GateStats: ...


class MetricsSink(Protocol):
    """Receives one event per request; must return quickly (no I/O on the caller's path)."""

    def record(self, event: RequestEvent) -> None: ...


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch, for timestamps."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for durations."""
        ...


class ImageProcessor(Protocol):
    """Turns any image a notebook holds into compact bytes a vision model accepts."""

    def prepare(self, source: object) -> PreparedImage: ...


class ImageCache(Protocol):
    def get(self, key: str) -> PreparedImage | None: ...

    def put(self, key: str, image: PreparedImage) -> None: ...
