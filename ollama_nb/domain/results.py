"""What comes back: streamed pieces, finished results and their timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .messages import ChatMessage, ToolCall

NS_PER_S = 1_000_000_000
#: Ollama reports a few milliseconds of load time even for a loaded model; a load
#: longer than this means the weights were read from disk.
COLD_LOAD_THRESHOLD_S = 0.25


@dataclass(frozen=True, slots=True)
class Timings:
    """Ollama's own timings (nanoseconds on the wire) plus what only the client sees."""

    total_ns: int = 0
    load_ns: int = 0
    prompt_eval_count: int = 0
    prompt_eval_ns: int = 0
    eval_count: int = 0
    eval_ns: int = 0
    ttft_s: float | None = None  # client-measured: request sent -> first content or thinking
    latency_s: float | None = None  # client-measured: request sent -> last byte
    queue_wait_s: float = 0.0  # time spent waiting in our concurrency gate
    retries: int = 0

    @classmethod
    def from_wire(cls, chunk: dict[str, Any]) -> Timings:
        return cls(
            total_ns=int(chunk.get("total_duration") or 0),
            load_ns=int(chunk.get("load_duration") or 0),
            prompt_eval_count=int(chunk.get("prompt_eval_count") or 0),
            prompt_eval_ns=int(chunk.get("prompt_eval_duration") or 0),
            eval_count=int(chunk.get("eval_count") or 0),
            eval_ns=int(chunk.get("eval_duration") or 0),
        )

    @property
    def total_s(self) -> float:
        return self.total_ns / NS_PER_S

    @property
    def load_s(self) -> float:
        return self.load_ns / NS_PER_S

    @property
    def decode_tps(self) -> float | None:
        """Generated tokens per second, from the server's own eval timing."""
        if self.eval_count <= 0 or self.eval_ns <= 0:
            return None
        return self.eval_count * NS_PER_S / self.eval_ns

    @property
    def prompt_tps(self) -> float | None:
        if self.prompt_eval_count <= 0 or self.prompt_eval_ns <= 0:
            return None
        return self.prompt_eval_count * NS_PER_S / self.prompt_eval_ns

    @property
    def cold_load(self) -> bool:
        return self.load_s > COLD_LOAD_THRESHOLD_S

    def summary(self) -> str:
        """One quiet line for the end of an answer."""
        parts = [f"{self.eval_count} tokens"]
        if self.decode_tps is not None:
            parts.append(f"{self.decode_tps:.1f} tok/s")
        if self.ttft_s is not None:
            parts.append(f"TTFT {self.ttft_s:.2f} s")
        if self.cold_load:
            parts.append(f"cold load {self.load_s:.1f} s")
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One parsed line of a chat or generate stream."""

    content: str = ""
    thinking: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    done: bool = False
    done_reason: str | None = None
    model: str = ""
    timings: Timings | None = None  # only on the final chunk
    context: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A finished (or interrupted) answer.

    ``interrupted`` is set when the user stopped it or the connection failed
    after text had arrived; ``text`` then holds everything received.
    ``exchange`` holds the tool rounds that led to this answer (the model's
    calls and the results sent back), so a conversation can remember them.
    ``truncated`` says the server probably cut the prompt to fit its context.
    """

    text: str
    model: str
    thinking: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    done_reason: str | None = None
    timings: Timings = field(default_factory=Timings)
    request_id: str = ""
    interrupted: bool = False
    error: str | None = None
    exchange: tuple[ChatMessage, ...] = ()
    truncated: bool = False
    host: str | None = None  # which server answered

    def __str__(self) -> str:
        return self.text

    # No ``_repr_markdown_``: a reply is untrusted text, and JupyterLab renders an
    # executed cell's Markdown unsanitised. ``presentation.replies`` draws it (the
    # extension registers that for ``ChatResult``); without it the repr is plain text.


@dataclass(frozen=True, slots=True)
class EmbedResult:
    model: str
    embeddings: tuple[tuple[float, ...], ...]
    timings: Timings = field(default_factory=Timings)


@dataclass(frozen=True, slots=True)
class PullProgress:
    """One status line of ``/api/pull``; ``digest`` names the layer being fetched."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None

    @property
    def fraction(self) -> float | None:
        if not self.total or self.completed is None:
            return None
        return min(1.0, self.completed / self.total)
