"""Which answers may be kept, under what key, and what a kept answer holds.

A kept answer is served again only for a request that would get the same one:
the key hashes the model's *digest* (not its name: a re-pulled ``llama3.2`` is
a different model and must miss), the endpoint, and the request as it goes on
the wire (messages or prompt, system, options, format or schema, think, tools;
images by their SHA-256), less what does not change the answer (the model's
name, ``keep_alive``, ``stream``). Only deterministic requests (temperature 0
or a seed) are kept unless the caller asks: a sampled answer served twice
would hide the variation the user is measuring.

The adapter (``infrastructure/response_cache.py``) stores entries in a file
that we read back, so an entry is checked before it is served: it must parse
into the fields below with the right types and sizes; anything else is a miss.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..domain import ChatRequest, ChatResult, EmbedRequest, GenerateRequest, Timings, ToolCall

#: Bumped when the key's recipe or the entry's shape changes: old entries then miss.
CACHE_FORMAT = 1
#: The longest reply text an entry may carry back (a bigger one is a bad entry).
MAX_ENTRY_CHARS = 4 * 1024 * 1024
_MAX_TOOL_CALLS = 64


@dataclass(frozen=True, slots=True)
class CachedReply:
    """What a finished answer needs to be given again without asking the model."""

    text: str
    model: str
    thinking: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    done_reason: str | None = None
    prompt_tokens: int = 0
    eval_tokens: int = 0

    @classmethod
    def of(cls, result: ChatResult) -> CachedReply:
        t = result.timings
        return cls(
            text=result.text,
            model=result.model,
            thinking=result.thinking,
            tool_calls=result.tool_calls,
            done_reason=result.done_reason,
            prompt_tokens=t.prompt_eval_count,
            eval_tokens=t.eval_count,
        )

    def result(self, request_id: str) -> ChatResult:
        """The answer as a result marked ``cached``; no durations, so no speed is claimed."""
        return ChatResult(
            text=self.text,
            model=self.model,
            thinking=self.thinking,
            tool_calls=self.tool_calls,
            done_reason=self.done_reason,
            timings=Timings(prompt_eval_count=self.prompt_tokens, eval_count=self.eval_tokens),
            request_id=request_id,
            cached=True,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "text": self.text,
                "model": self.model,
                "thinking": self.thinking,
                "tool_calls": [
                    {"name": c.name, "arguments": dict(c.arguments)} for c in self.tool_calls
                ],
                "done_reason": self.done_reason,
                "prompt_tokens": self.prompt_tokens,
                "eval_tokens": self.eval_tokens,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> CachedReply:
        """Parse an entry read back from disk; ``ValueError`` for anything not ours."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("entry is not an object")
        reply = cls(
            text=_text(data, "text"),
            model=_text(data, "model"),
            thinking=_text(data, "thinking"),
            tool_calls=_tool_calls(data.get("tool_calls")),
            done_reason=_optional_text(data.get("done_reason")),
            prompt_tokens=_count(data.get("prompt_tokens")),
            eval_tokens=_count(data.get("eval_tokens")),
        )
        if len(reply.text) + len(reply.thinking) > MAX_ENTRY_CHARS:
            raise ValueError("entry too large")
        return reply


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} is not text")
    return value


def _optional_text(value: object) -> str | None:
    if value is None or (isinstance(value, str) and len(value) <= 64):
        return value
    raise ValueError("done_reason is not short text")


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("token count is not a whole number >= 0")
    return value


def _tool_calls(value: object) -> tuple[ToolCall, ...]:
    if not isinstance(value, list) or len(value) > _MAX_TOOL_CALLS:
        raise ValueError("tool_calls is not a short list")
    calls = []
    for item in value:
        if not isinstance(item, dict):
            raise ValueError("a tool call is not an object")
        name, arguments = item.get("name"), item.get("arguments")
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise ValueError("a tool call lacks a name or arguments")
        calls.append(ToolCall(name, arguments))
    return tuple(calls)


def is_deterministic(request: ChatRequest | GenerateRequest) -> bool:
    """Temperature 0 (greedy) or a fixed seed: the same request should get the same answer."""
    options = request.options
    return options.temperature == 0.0 or options.seed is not None


def wants_cache(request: ChatRequest | GenerateRequest, cache: bool | None) -> bool:
    """``cache=None`` (the default) keeps deterministic answers only; True or False decide."""
    return is_deterministic(request) if cache is None else cache


def cache_key(request: ChatRequest | GenerateRequest, digest: str) -> str:
    """SHA-256 of everything that decides the answer, with the model named by its digest."""
    wire = request.to_wire(stream=False)
    for unused in ("model", "keep_alive", "stream"):
        wire.pop(unused, None)
    if "images" in wire:
        wire["images"] = [_sha256(image) for image in wire["images"]]
    for message in wire.get("messages", ()):
        if "images" in message:
            message["images"] = [_sha256(image) for image in message["images"]]
    identity = {
        "format": CACHE_FORMAT,
        "endpoint": "chat" if isinstance(request, ChatRequest) else "generate",
        "digest": digest,
        "request": wire,
    }
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return _sha256(text)


#: The longest vector an entry may carry back.
MAX_VECTOR_LENGTH = 65_536


def embedding_key(request: EmbedRequest, text: str, digest: str) -> str:
    """One text's vector: the model's digest, the text and what shapes the vector."""
    identity = {
        "format": CACHE_FORMAT,
        "endpoint": "embed",
        "digest": digest,
        "input": text,
        "truncate": request.truncate,
        "dimensions": request.dimensions,
        "options": request.options.to_wire(),
    }
    text_key = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return _sha256(text_key)


def vector_to_json(vector: tuple[float, ...]) -> str:
    return json.dumps(list(vector), separators=(",", ":"))


def vector_from_json(text: str) -> tuple[float, ...]:
    """Parse a kept vector read back from disk; ``ValueError`` for anything not ours."""
    data = json.loads(text)
    if not isinstance(data, list) or not 0 < len(data) <= MAX_VECTOR_LENGTH:
        raise ValueError("entry is not a vector")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in data):
        raise ValueError("entry is not a vector of numbers")
    vector = tuple(float(v) for v in data)
    if not all(math.isfinite(v) for v in vector):
        raise ValueError("entry has a non-finite number")
    return vector


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
