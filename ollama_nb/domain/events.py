"""The record of one request, kept by every metrics sink."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from .results import Timings

RequestKind: TypeAlias = Literal["chat", "generate", "vision", "embed", "pull"]
#: ``cached`` answers came from the response cache: counted, but never in speed figures.
RequestStatus: TypeAlias = Literal["ok", "error", "interrupted", "cached"]


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """What happened to one request, whatever surface sent it.

    Prompt and response text are carried so a store may keep history; sinks
    that must not keep them (the request log) simply ignore those fields.
    """

    request_id: str
    started_at: float  # epoch seconds
    kind: RequestKind
    model: str
    host: str
    status: RequestStatus
    timings: Timings
    error_type: str | None = None
    error_message: str | None = None
    done_reason: str | None = None
    image_count: int = 0
    image_bytes_saved: int = 0
    tool_calls: int = 0  # calls the model asked for in this request (counts only)
    project: str | None = None
    prompt: str | None = None
    response: str | None = None
