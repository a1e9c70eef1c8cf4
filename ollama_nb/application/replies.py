"""Collecting a streamed answer so that none of it is lost.

The accumulator is shared between the task that streams and whoever shows the
answer: when the user interrupts, the surface asks it for what arrived so far.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

from ..domain import ChatChunk, ChatResult, Timings, ToolCall


@dataclass(slots=True)
class ReplyAccumulator:
    model: str
    request_id: str = ""
    text_parts: list[str] = field(default_factory=list)
    thinking_parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    done_reason: str | None = None
    server_timings: Timings | None = None
    ttft_s: float | None = None
    latency_s: float | None = None
    queue_wait_s: float = 0.0
    host: str | None = None  # the server that answered (a pool has several)
    chunks: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, chunk: ChatChunk) -> None:
        with self._lock:
            self.chunks += 1
            if chunk.content:
                self.text_parts.append(chunk.content)
            if chunk.thinking:
                self.thinking_parts.append(chunk.thinking)
            self.tool_calls.extend(chunk.tool_calls)
            if chunk.model:
                self.model = chunk.model
            if chunk.done:
                self.done_reason = chunk.done_reason
                self.server_timings = chunk.timings

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self.text_parts)

    @property
    def thinking(self) -> str:
        with self._lock:
            return "".join(self.thinking_parts)

    @property
    def has_content(self) -> bool:
        with self._lock:
            return bool(self.text_parts or self.thinking_parts or self.tool_calls)

    def timings(self) -> Timings:
        base = self.server_timings or Timings()
        return replace(
            base, ttft_s=self.ttft_s, latency_s=self.latency_s, queue_wait_s=self.queue_wait_s
        )

    def result(self, *, interrupted: bool = False, error: str | None = None) -> ChatResult:
        return ChatResult(
            text=self.text,
            thinking=self.thinking,
            model=self.model,
            tool_calls=tuple(self.tool_calls),
            done_reason=self.done_reason
            if not interrupted
            else (self.done_reason or "interrupted"),
            timings=self.timings(),
            request_id=self.request_id,
            interrupted=interrupted,
            error=error,
            host=self.host,
        )
