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
)
from ..domain.images import PreparedImage

Lane: TypeAlias = Literal["text", "vision"]


class OllamaGateway(Protocol):
    """One Ollama server, spoken to through its REST API."""

    @property
    def host(self) -> str: ...

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


class ConcurrencyGate(Protocol):
    """Admits at most as many requests as the server has parallel slots."""

    def slot(self, lane: Lane) -> AbstractAsyncContextManager[float]:
        """Hold a slot for the block; the value is how long we waited for it, in seconds."""
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
