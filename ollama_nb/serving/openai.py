"""OpenAI's API on top of Ollama's, translated the way Ollama's own compatibility layer does.

Each ``/v1/*`` handler is the native handler with two translations: the OpenAI request
body becomes an Ollama one before the native code runs (so validation, slots, limits and
the engine are shared), and each native answer object is rewritten in OpenAI's shape on
the way out: ``chat.completion`` objects, ``chat.completion.chunk`` server-sent events
ending in ``data: [DONE]``, ``text_completion``, model lists and embedding lists. Errors
are ``{"error": {"message", "type", "param", "code"}}`` with the native status.

What Ollama documents (``docs/openai.md``) is what is here: chat with text, data-URL
images, tools and ``response_format`` (``json_object`` or ``json_schema``); completions
with a string prompt and ``suffix``; ``stream_options.include_usage``; models and one
model; embeddings as floats or base64. Image URLs are refused as Ollama refuses them.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import time
from collections.abc import Mapping
from typing import ClassVar

from .api import ApiHandler, ChatHandler, EmbedHandler, GenerateHandler, Route
from .base import BaseHandler
from .catalogue import ModelCard
from .state import ServerState
from .wire import ApiError, JsonObject

_IMAGE_PREFIXES = tuple(f"data:image/{kind};base64," for kind in ("jpeg", "jpg", "png", "webp"))
_EFFORTS = {"none": False, "minimal": "low", "low": "low", "medium": "medium", "high": "high",
            "max": "high", "xhigh": "high", "ultra": "high"}  # fmt: skip
_FINGERPRINT = "fp_ollama"


def error_object(error: ApiError) -> JsonObject:
    """OpenAI's error envelope, typed by status as Ollama types it."""
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(error.status, "api_error")
    return {"error": {"message": error.message, "type": kind, "param": None, "code": None}}


def sse(obj: object) -> bytes:
    """One server-sent event carrying ``obj`` as JSON."""
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


class OpenAIErrors(BaseHandler):
    """Errors in OpenAI's shape: JSON before a stream starts, an event after."""

    def error_payload(self, error: ApiError) -> bytes:
        """``{"error": {...}}``."""
        return json.dumps(error_object(error)).encode()

    def stream_error(self, error: ApiError) -> bytes:
        """A ``data:`` event with the error (the OpenAI SDKs raise on it)."""
        return sse(error_object(error))


# --- requests ------------------------------------------------------------------------------


def _number(body: Mapping[str, object], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"json: cannot unmarshal {key}: expected a number")
    return value


def _sampling(body: Mapping[str, object]) -> JsonObject:
    """OpenAI sampling fields as Ollama options (temperature and top_p default to 1)."""
    options: JsonObject = {}
    stop = body.get("stop")
    if isinstance(stop, str):
        options["stop"] = [stop]
    elif isinstance(stop, list):
        if not all(isinstance(s, str) for s in stop):
            raise ApiError(400, "invalid type for 'stop' field: expected strings")
        options["stop"] = list(stop)
    elif stop is not None:
        raise ApiError(400, "invalid type for 'stop' field: expected a string or an array")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise ApiError(400, "json: cannot unmarshal max_tokens: expected an integer")
        options["num_predict"] = max_tokens
    temperature = _number(body, "temperature")
    options["temperature"] = 1.0 if temperature is None else temperature
    top_p = _number(body, "top_p")
    options["top_p"] = 1.0 if top_p is None else top_p
    for key in ("frequency_penalty", "presence_penalty"):
        value = _number(body, key)
        if value is not None:
            options[key] = value
    seed = body.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ApiError(400, "json: cannot unmarshal seed: expected an integer")
        options["seed"] = seed
    return options


def image_from_url(url: object) -> str:
    """The base64 payload of a data URL (what ``images`` carries natively)."""
    if not isinstance(url, str):
        raise ApiError(400, "invalid message format")
    if url.startswith(("http://", "https://")):
        raise ApiError(
            400,
            "image URLs are not currently supported, please use base64 encoded data instead",
        )
    if url.startswith("data:;base64,"):
        return url.removeprefix("data:;base64,")
    for prefix in _IMAGE_PREFIXES:
        if url.startswith(prefix):
            return url.removeprefix(prefix)
    raise ApiError(400, "invalid image input")


def _tool_name_for(messages: list[object], call_id: object) -> str:
    for message in reversed(messages):
        if isinstance(message, dict):
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict) and call.get("id") == call_id:
                    function = call.get("function")
                    if isinstance(function, dict):
                        return str(function.get("name", ""))
    return ""


def _native_tool_calls(calls: object) -> list[object]:
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise ApiError(400, "invalid tool call arguments")
    out: list[object] = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise ApiError(400, "invalid tool call arguments")
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except (TypeError, ValueError):
            raise ApiError(400, "invalid tool call arguments") from None
        out.append({"function": {"name": function.get("name", ""), "arguments": arguments}})
    return out


def chat_request(body: Mapping[str, object]) -> JsonObject:
    """An OpenAI chat completion request as an Ollama ``/api/chat`` body."""
    raw = body.get("messages")
    if not isinstance(raw, list):
        raise ApiError(400, "json: cannot unmarshal messages: expected an array")
    if not raw:
        raise ApiError(400, "[] is too short - 'messages'")
    messages: list[object] = []
    for item in raw:
        if not isinstance(item, dict):
            raise ApiError(400, "invalid message format")
        role = item.get("role")
        tool_name = ""
        if isinstance(role, str) and role.lower() == "tool":
            tool_name = str(item.get("name") or "") or _tool_name_for(raw, item.get("tool_call_id"))
        calls = _native_tool_calls(item.get("tool_calls"))
        content = item.get("content")
        if isinstance(content, list):
            parts: list[JsonObject] = []
            for part in content:
                if not isinstance(part, dict):
                    raise ApiError(400, "invalid message format")
                if part.get("type") == "text" and isinstance(part.get("text"), str):
                    parts.append({"role": role, "content": part["text"]})
                elif part.get("type") == "image_url":
                    url = part.get("image_url")
                    if isinstance(url, dict):
                        url = url.get("url")
                    parts.append({"role": role, "content": "", "images": [image_from_url(url)]})
                else:
                    raise ApiError(400, "invalid message format")
            if parts and calls:
                parts[-1]["tool_calls"] = calls
            messages.extend(parts)
            continue
        if content is None and not calls:
            raise ApiError(400, "invalid message content type: <nil>")
        if content is not None and not isinstance(content, str):
            raise ApiError(400, f"invalid message content type: {type(content).__name__}")
        message: JsonObject = {"role": role, "content": content or ""}
        if calls:
            message["tool_calls"] = calls
        if tool_name:
            message["tool_name"] = tool_name
        messages.append(message)
    native: JsonObject = {
        "model": body.get("model"),
        "messages": messages,
        "stream": body.get("stream") is True,
        "options": _sampling(body),
    }
    if body.get("tools") is not None:
        native["tools"] = body["tools"]
    fmt = response_format(body.get("response_format"))
    if fmt is not None:
        native["format"] = fmt
    reasoning = body.get("reasoning")
    effort = (
        reasoning.get("effort") if isinstance(reasoning, dict) else body.get("reasoning_effort")
    )
    if effort is not None:
        if effort not in _EFFORTS:
            raise ApiError(400, f"invalid reasoning value: {json.dumps(effort)}")
        native["think"] = _EFFORTS[str(effort)]
    return native


def response_format(value: object) -> object:
    """``json_object`` as ``"json"``, ``json_schema`` as its schema, anything else none."""
    if not isinstance(value, dict):
        return None
    kind = str(value.get("type", "")).strip().lower()
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = value.get("json_schema")
        if isinstance(spec, dict) and spec.get("schema") is not None:
            return spec["schema"]
    return None


def completion_request(body: Mapping[str, object]) -> JsonObject:
    """An OpenAI completion request as an Ollama ``/api/generate`` body."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise ApiError(400, "json: cannot unmarshal prompt: only a string prompt is supported")
    native: JsonObject = {
        "model": body.get("model"),
        "prompt": prompt,
        "stream": body.get("stream") is True,
        "options": _sampling(body),
    }
    if isinstance(body.get("suffix"), str) and body["suffix"]:
        native["suffix"] = body["suffix"]
    return native


def embeddings_request(body: Mapping[str, object]) -> JsonObject:
    """An OpenAI embeddings request as an Ollama ``/api/embed`` body."""
    fmt = body.get("encoding_format")
    if fmt not in (None, "") and str(fmt).lower() not in ("float", "base64"):
        raise ApiError(
            400,
            f"Invalid value for 'encoding_format' = {fmt}. Supported values: ['float', 'base64'].",
        )
    value = body.get("input")
    if value == "":
        value = [""]
    if value is None or value == []:
        raise ApiError(400, "invalid input")
    native: JsonObject = {"model": body.get("model"), "input": value}
    if body.get("dimensions"):
        native["dimensions"] = body["dimensions"]
    return native


# --- answers -------------------------------------------------------------------------------


def _usage(final: Mapping[str, object]) -> JsonObject:
    prompt = int(final.get("prompt_eval_count", 0) or 0)  # type: ignore[call-overload]
    completion = int(final.get("eval_count", 0) or 0)  # type: ignore[call-overload]
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip


def openai_tool_calls(message: Mapping[str, object]) -> list[JsonObject]:
    """Native tool calls with their arguments as a JSON string, as OpenAI sends them."""
    out: list[JsonObject] = []
    calls = message.get("tool_calls")
    for i, call in enumerate(calls if isinstance(calls, list) else []):
        function = call.get("function", {}) if isinstance(call, dict) else {}
        out.append(
            {
                "id": call.get("id", f"call_{i}") if isinstance(call, dict) else f"call_{i}",
                "index": function.get("index", i),
                "type": "function",
                "function": {
                    "name": function.get("name", ""),
                    "arguments": json.dumps(function.get("arguments", {})),
                },
            }
        )
    return out


class _Stream:
    """What one OpenAI answer shares across its objects: id, time, first chunk, tool use."""

    def __init__(self, prefix: str, body: Mapping[str, object]) -> None:
        self.id = f"{prefix}-{random.randint(0, 998)}"
        self.created = int(time.time())
        self.first = True
        self.tool_called = False
        options = body.get("stream_options")
        self.include_usage = isinstance(options, dict) and options.get("include_usage") is True

    def envelope(self, obj: Mapping[str, object], kind: str) -> JsonObject:
        return {"id": self.id, "object": kind, "created": self.created,
                "model": obj.get("model", ""), "system_fingerprint": _FINGERPRINT}  # fmt: skip

    def closing(self, obj: Mapping[str, object], kind: str) -> bytes:
        """What ends a stream: a usage-only chunk when asked for, then ``[DONE]``."""
        out = b""
        if self.include_usage:
            usage = self.envelope(obj, kind)
            usage["choices"] = []
            usage["usage"] = _usage(obj)
            out = sse(usage)
        return out + b"data: [DONE]\n\n"

    def finish_reason(self, obj: Mapping[str, object]) -> str:
        reason = str(obj.get("done_reason") or "stop")
        return "tool_calls" if reason == "stop" and self.tool_called else reason


class ChatCompletionsHandler(OpenAIErrors, ChatHandler):
    """``POST /v1/chat/completions``."""

    stream_type: ClassVar[str] = "text/event-stream"
    openai_body: JsonObject
    answer: _Stream

    async def prepare(self) -> None:
        """Parse as the native handler does, then translate the body."""
        await super().prepare()
        if self._finished:
            return
        self.openai_body = self.body
        self.answer = _Stream("chatcmpl", self.body)
        try:
            self.body = chat_request(self.body)
        except ApiError as exc:
            self.send_error_json(exc)

    def _delta(self, obj: Mapping[str, object]) -> JsonObject | None:
        message = obj.get("message")
        message = message if isinstance(message, dict) else {}
        delta: JsonObject = {}
        if self.answer.first:
            delta["role"] = "assistant"
        calls = openai_tool_calls(message)
        if message.get("content") or not calls:
            delta["content"] = message.get("content", "")
        if message.get("thinking"):
            delta["reasoning"] = message["thinking"]
        if calls:
            delta["tool_calls"] = calls
            self.answer.tool_called = True
        if not self.answer.first and not (message.get("content") or calls or
                                          message.get("thinking")):  # fmt: skip
            return None
        self.answer.first = False
        return delta

    async def emit_chunk(self, obj: JsonObject) -> None:
        """One ``chat.completion.chunk`` event per piece."""
        delta = self._delta(obj)
        if delta is not None:
            chunk = self.answer.envelope(obj, "chat.completion.chunk")
            chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}]
            await self.send_line(sse(chunk))

    async def emit_last(self, obj: JsonObject) -> None:
        """Any last content, the finish chunk, usage if asked for, then ``[DONE]``."""
        await self.emit_chunk(obj)
        finish = self.answer.envelope(obj, "chat.completion.chunk")
        finish["choices"] = [
            {"index": 0, "delta": {}, "finish_reason": self.answer.finish_reason(obj)}
        ]
        self.write(sse(finish))
        self.finish(self.answer.closing(obj, "chat.completion.chunk"))

    def emit_whole(self, obj: JsonObject) -> None:
        """One ``chat.completion`` object."""
        native = obj.get("message")
        native = native if isinstance(native, dict) else {}
        message: JsonObject = {"role": "assistant", "content": native.get("content", "")}
        calls = openai_tool_calls(native)
        if calls:
            message["tool_calls"] = calls
            self.answer.tool_called = True
        if native.get("thinking"):
            message["reasoning"] = native["thinking"]
        out = self.answer.envelope(obj, "chat.completion")
        out["choices"] = [
            {"index": 0, "message": message, "finish_reason": self.answer.finish_reason(obj)}
        ]
        out["usage"] = _usage(obj)
        self.send_json(out)


class CompletionsHandler(OpenAIErrors, GenerateHandler):
    """``POST /v1/completions``."""

    stream_type: ClassVar[str] = "text/event-stream"
    answer: _Stream

    async def prepare(self) -> None:
        """Parse as the native handler does, then translate the body."""
        await super().prepare()
        if self._finished:
            return
        self.answer = _Stream("cmpl", self.body)
        try:
            self.body = completion_request(self.body)
        except ApiError as exc:
            self.send_error_json(exc)

    def _choice(self, obj: Mapping[str, object], *, last: bool) -> JsonObject:
        reason = self.answer.finish_reason(obj) if last else None
        return {"text": obj.get("response", ""), "index": 0, "finish_reason": reason}

    async def emit_chunk(self, obj: JsonObject) -> None:
        """One ``text_completion`` event per piece."""
        chunk = self.answer.envelope(obj, "text_completion")
        chunk["choices"] = [self._choice(obj, last=False)]
        await self.send_line(sse(chunk))

    async def emit_last(self, obj: JsonObject) -> None:
        """The finishing chunk, usage if asked for, then ``[DONE]``."""
        chunk = self.answer.envelope(obj, "text_completion")
        chunk["choices"] = [self._choice(obj, last=True)]
        self.write(sse(chunk))
        self.finish(self.answer.closing(obj, "text_completion"))

    def emit_whole(self, obj: JsonObject) -> None:
        """One ``text_completion`` object."""
        out = self.answer.envelope(obj, "text_completion")
        out["choices"] = [self._choice(obj, last=True)]
        out["usage"] = _usage(obj)
        self.send_json(out)


class EmbeddingsHandler(OpenAIErrors, EmbedHandler):
    """``POST /v1/embeddings``."""

    encoding: str = "float"

    async def prepare(self) -> None:
        """Parse as the native handler does, then translate the body."""
        await super().prepare()
        if self._finished:
            return
        self.encoding = str(self.body.get("encoding_format") or "float").lower()
        try:
            self.body = embeddings_request(self.body)
        except ApiError as exc:
            self.send_error_json(exc)

    def emit_whole(self, obj: JsonObject) -> None:
        """A ``list`` of ``embedding`` objects."""
        vectors = obj.get("embeddings")
        data: list[object] = []
        for i, vector in enumerate(vectors if isinstance(vectors, list) else []):
            value: object = vector
            if self.encoding == "base64":
                packed = struct.pack(f"<{len(vector)}f", *vector)
                value = base64.b64encode(packed).decode()
            data.append({"object": "embedding", "embedding": value, "index": i})
        tokens = obj.get("prompt_eval_count", 0)
        self.send_json(
            {"object": "list", "data": data, "model": obj.get("model", ""),
             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        )  # fmt: skip


def _model_object(card: ModelCard, name: str) -> JsonObject:
    namespace = name.split("/")[-2] if name.count("/") >= 1 else "library"
    return {"id": name, "object": "model", "created": int(card.modified_at.timestamp()),
            "owned_by": namespace}  # fmt: skip


class ModelsHandler(OpenAIErrors, ApiHandler):
    """``GET /v1/models``."""

    def get(self) -> None:
        """Installed models, most recently modified first."""
        data: list[object] = [_model_object(c, c.name) for c in self.state.catalogue.installed()]
        self.send_json({"object": "list", "data": data})


class ModelHandler(OpenAIErrors, ApiHandler):
    """``GET /v1/models/{model}``."""

    async def get(self, name: str) -> None:
        """One model, or a 404 in OpenAI's shape."""
        await self.guarded(self._get(name))

    async def _get(self, name: str) -> None:
        card = self.card_or_404(name)
        self.send_json(_model_object(card, name))


def openai_routes(state: ServerState) -> list[Route]:
    """The ``/v1`` routes Ollama serves."""
    kwargs = {"state": state}
    return [
        (r"/v1/chat/completions", ChatCompletionsHandler, kwargs),
        (r"/v1/completions", CompletionsHandler, kwargs),
        (r"/v1/embeddings", EmbeddingsHandler, kwargs),
        (r"/v1/models", ModelsHandler, kwargs),
        (r"/v1/models/(.+)", ModelHandler, kwargs),
    ]
