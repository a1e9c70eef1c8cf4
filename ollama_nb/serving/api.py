"""Ollama's documented REST endpoints (``/``, ``/api/*``).

Every handler validates with :mod:`.wire`, answers with Ollama's shapes and status codes,
and leaves model behaviour to the engine named by the model's card.

:class:`ApiHandler` has four overridable steps (:meth:`~ApiHandler.intercept`,
:meth:`~ApiHandler.interrupt`, :meth:`~ApiHandler.load_model`,
:meth:`~ApiHandler.pull_pause`). Here they do nothing beyond serving the request; the
stand-in in ``ollama_nb.testing`` overrides them in its own handler classes to inject
faults and log requests, so none of that exists in a server built from this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import ClassVar, Literal

from .base import BaseHandler
from .catalogue import (
    COMPLETION,
    INSERT,
    THINKING,
    TOOLS,
    VISION,
    ModelCard,
    canonical_name,
    valid_name,
)
from .engine import EngineMessage, Finish, GenerationRequest, ImageInfo, Piece, ToolCall
from .images import ImageDecodeError, decode_image
from .scheduler import Loaded, ServerBusy
from .state import ServerState, fit_context
from .wire import (
    ApiError,
    JsonObject,
    bool_field,
    capability_list,
    context_field,
    format_field,
    keep_alive_field,
    line,
    model_field,
    not_found,
    now_rfc3339,
    ns,
    options_field,
    parse_body,
    rfc3339,
    string_field,
    think_field,
    tools_field,
)


class RootHandler(BaseHandler):
    """``GET /`` and ``HEAD /``: the liveness probe every client uses."""

    _TEXT = b"Ollama is running"

    def get(self) -> None:
        """The plain-text banner."""
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(self._TEXT)

    def head(self) -> None:
        """Same headers, no body."""
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Content-Length", str(len(self._TEXT)))
        self.finish()


class NotFoundHandler(BaseHandler):
    """Unknown paths, answered like gin's default router."""

    async def prepare(self) -> None:
        """404 (after the Host check) for every method."""
        await super().prepare()
        if not self.refused:
            self.set_status(404)
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish("404 page not found")


class ApiHandler(BaseHandler):
    """Body parsing and the overridable steps every ``/api/*`` request goes through."""

    streams: ClassVar[bool] = False
    """True for endpoints that stream and call :meth:`interrupt` between items."""
    stream_type: ClassVar[str] = "application/x-ndjson"
    """What a streamed answer is sent as (the OpenAI routes send server-sent events)."""

    body: JsonObject
    body_error: ApiError | None

    async def prepare(self) -> None:
        """Parse the JSON body; a malformed one is answered 400 after :meth:`intercept`."""
        await super().prepare()
        if self.refused:
            return
        self.body = {}
        self.body_error = None
        if self.request.method in ("POST", "DELETE"):
            try:
                self.body = parse_body(self.request.body)
            except ApiError as exc:
                self.body_error = exc
        if await self.intercept():
            return
        if self.body_error is not None:
            self.send_error_json(self.body_error)

    async def intercept(self) -> bool:
        """Runs before the request is served; ``True`` when it already answered it."""
        return False

    async def interrupt(self, emitted: int, stream: bool, *, final: bool = False) -> bool:
        """Runs before each streamed item and before the last one (``final``).

        ``emitted`` items went out so far; ``True`` when it ended the response itself.
        """
        return False

    async def load_model(
        self, card: ModelCard, options: Mapping[str, object], keep_alive_s: float
    ) -> Loaded:
        """Load ``card`` (or reuse it) for this request; release with ``release_model``."""
        return await self.state.acquire_model(card, options, keep_alive_s)

    def pull_pause(self, lines: int) -> float:
        """Seconds to wait before each of a pull's ``lines`` progress lines."""
        return 0.0

    async def emit_chunk(self, obj: JsonObject) -> None:
        """Send one streamed object (an NDJSON line here)."""
        await self.send_line(line(obj))

    async def emit_last(self, obj: JsonObject) -> None:
        """Send the last streamed object and end the response."""
        await self.send_line(line(obj))
        self.finish()

    def emit_whole(self, obj: JsonObject) -> None:
        """Answer with one JSON object (``stream: false``)."""
        self.send_json(obj)

    def card_or_404(self, name: str) -> ModelCard:
        """The installed model or Ollama's "try pulling it first" 404."""
        card = self.state.catalogue.get(name)
        if card is None:
            raise not_found(name)
        return card


class VersionHandler(ApiHandler):
    """``GET /api/version``."""

    def get(self) -> None:
        """The server's version (suffixed with what is serving, never Ollama's own)."""
        self.send_json({"version": self.state.config.version})

    def head(self) -> None:
        """Headers only."""
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish()


class TagsHandler(ApiHandler):
    """``GET /api/tags``: installed models."""

    def get(self) -> None:
        """Most recently modified first, like Ollama."""
        models: list[object] = [
            {
                "name": card.name,
                "model": card.name,
                "modified_at": rfc3339(card.modified_at),
                "size": card.size_bytes,
                "digest": card.digest,
                "details": card.details(),
            }
            for card in self.state.catalogue.installed()
        ]
        self.send_json({"models": models})

    def head(self) -> None:
        """Headers only (Ollama routes ``HEAD /api/tags`` too)."""
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish()


class ShowHandler(ApiHandler):
    """``POST /api/show``: one model's metadata."""

    async def post(self) -> None:
        """Details, model info, capabilities, parameters and template."""
        await self.guarded(self._show())

    async def _show(self) -> None:
        name = model_field(self.body, legacy_name=True)
        card = self.card_or_404(name)
        modelfile = (
            '# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {card.name}\n\nFROM {card.name}\n"
        )
        self.send_json(
            {
                "license": "",
                "modelfile": modelfile,
                "parameters": card.parameters,
                "template": card.template,
                "details": card.details(),
                "model_info": card.model_info(),
                "capabilities": capability_list(card),
                "modified_at": rfc3339(card.modified_at),
            }
        )


class PsHandler(ApiHandler):
    """``GET /api/ps``: models in memory and when they will be unloaded."""

    async def get(self) -> None:
        """Expired models are dropped first, so a client never sees a stale entry."""
        await self.state.evict_expired()
        models: list[object] = [
            {
                "name": e.card.name,
                "model": e.card.name,
                "size": self.state.memory_bytes(e.card),
                "digest": e.card.digest,
                "details": e.card.details(),
                "expires_at": rfc3339(e.expires_wall()),
                "size_vram": self.state.engine_for(e.card).vram_bytes(e.card),
                "context_length": e.context_length,
            }
            for e in self.state.residency.entries()
            if e.ready
        ]
        self.send_json({"models": models})


class DeleteHandler(ApiHandler):
    """``DELETE /api/delete``."""

    async def delete(self) -> None:
        """200 with an empty body, or 404."""
        await self.guarded(self._delete())

    async def _delete(self) -> None:
        name = model_field(self.body, legacy_name=True)
        if not valid_name(name):
            raise ApiError(400, f'name "{name}" is invalid')
        if not self.state.catalogue.remove(name):
            raise ApiError(404, f"model '{name}' not found")
        await self.state.unload(canonical_name(name))
        self.finish()


class CopyHandler(ApiHandler):
    """``POST /api/copy``."""

    async def post(self) -> None:
        """200 with an empty body, or 404 when the source is missing."""
        await self.guarded(self._copy())

    async def _copy(self) -> None:
        source = string_field(self.body, "source")
        destination = string_field(self.body, "destination")
        if not valid_name(source):
            raise ApiError(400, f'source "{source}" is invalid')
        if not valid_name(destination):
            raise ApiError(400, f'destination "{destination}" is invalid')
        card = self.state.catalogue.get(source)
        if card is None:
            raise ApiError(404, f'model "{source}" not found')
        self.state.catalogue.install(card.renamed(destination))
        self.finish()


class PullHandler(ApiHandler):
    """``POST /api/pull``: progress lines, then the model is installed."""

    streams = True

    async def post(self) -> None:
        """Stream (default) or answer once with the last status."""
        await self.guarded(self._pull())

    async def _pull(self) -> None:
        name = model_field(self.body, legacy_name=True)
        stream = bool_field(self.body, "stream", True)
        if not valid_name(name):
            raise ApiError(400, "invalid model name")
        st = self.state
        card = st.catalogue.remote(name)
        layers = _layers(card) if card else []
        steps = 4
        total_lines = 1 + len(layers) * (steps + 1) + 3
        pause = self.pull_pause(total_lines)
        lines: list[JsonObject] = [{"status": "pulling manifest"}]
        emitted = 0
        if card is None:
            offered = ", ".join(c.name for c in st.catalogue.pullable()) or "none"
            lines.append(
                {
                    "error": f"pull model manifest: file does not exist: {name} is not one "
                    f"of the models this server can pull ({offered})"
                }
            )
        for digest, size in layers:
            status = f"pulling {digest[7:19]}"
            lines.append({"status": status, "digest": digest, "total": size})
            for i in range(1, steps + 1):
                lines.append(
                    {"status": status, "digest": digest, "total": size,
                     "completed": size * i // steps}
                )  # fmt: skip
        if card is not None:
            lines += [{"status": s} for s in ("verifying sha256 digest", "writing manifest")]
        for item in lines:
            if await self.interrupt(emitted, stream):
                return
            if "error" in item:
                if stream:
                    await self.start_stream()
                    await self.send_line(line(item))
                    self.finish()
                else:
                    self.send_error_json(ApiError(500, str(item["error"])))
                return
            if pause:
                await asyncio.sleep(pause)
            if stream:
                await self.start_stream()
                await self.send_line(line(item))
            emitted += 1
        if await self.interrupt(emitted, stream, final=True):
            return
        assert card is not None
        st.catalogue.install(card.renamed(card.name))
        if stream:
            await self.send_line(line({"status": "success"}))
            self.finish()
        else:
            self.send_json({"status": "success"})


class UnsupportedHandler(ApiHandler):
    """``/api/create``, ``/api/push`` and blob uploads: a registry-backed model store's work.

    This server serves the models it was configured with; it has no model store to build
    into or a registry to push to, so it says so (501) rather than letting a client guess
    from a bare 404.
    """

    def initialize(self, state: ServerState, action: str = "") -> None:
        """``action`` names the refused operation in the message."""
        super().initialize(state)
        self.action = action

    def _refuse_action(self) -> None:
        self.send_error_json(
            ApiError(
                501,
                f"{self.action} is not supported by the embedded server ({self.state.config.version}); "
                "it serves the models it was started with. Use Ollama to "
                f"{self.action} models.",
            )
        )

    def post(self, *_: str) -> None:
        """Refused, whatever the body."""
        self._refuse_action()

    def head(self, *_: str) -> None:
        """Refused (``HEAD /api/blobs/:digest``)."""
        self._refuse_action()


def _layers(card: ModelCard) -> list[tuple[str, int]]:
    """Manifest layers: weights, then template, license and params blobs."""
    sizes = [card.size_bytes - 12_000, 1_400, 7_700, 96]
    return [
        (f"sha256:{zlib.crc32(f'{card.name}/{i}'.encode()):08x}{card.digest[8:]}", size)
        for i, size in enumerate(sizes)
    ]


class InferenceHandler(ApiHandler):
    """``POST /api/chat`` and ``POST /api/generate``: one code path, two wire shapes."""

    streams = True
    kind: ClassVar[Literal["chat", "generate"]]
    received: float  # when the request arrived: total_duration counts from here
    started: float  # the same, less the wait for a slot: load_duration counts from here

    async def post(self) -> None:
        """Validate, queue for a slot, load, generate, stream."""
        self.received = self.started = time.monotonic()
        await self.guarded(self._infer())

    def _messages(self) -> tuple[tuple[EngineMessage, ...], bool]:
        """The conversation for the engine and whether this is a load-only request."""
        body = self.body
        if self.kind == "generate":
            prompt = string_field(body, "prompt")
            system = string_field(body, "system")
            if bool_field(body, "raw", False) and (system or body.get("context")):
                raise ApiError(400, "raw mode does not support template, system, or context")
            images = _decode_images(body.get("images"))
            msgs = [EngineMessage("system", system)] if system else []
            msgs.append(EngineMessage("user", prompt, images))
            return tuple(msgs), prompt == ""
        raw = body.get("messages")
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise ApiError(400, "json: cannot unmarshal messages: expected an array")
        out: list[EngineMessage] = []
        for item in raw:
            if not isinstance(item, dict):
                raise ApiError(400, "json: cannot unmarshal message: expected an object")
            role = string_field(item, "role")
            content = string_field(item, "content")
            tool_name = string_field(item, "tool_name") or string_field(item, "name")
            out.append(EngineMessage(role, content, _decode_images(item.get("images")), tool_name))
        return tuple(out), not out

    async def _infer(self) -> None:
        body, st = self.body, self.state
        requested = model_field(body)
        stream = bool_field(body, "stream", True)
        options = options_field(body)
        fmt = format_field(body)
        think = think_field(body)
        keep_alive = keep_alive_field(body, st.config.keep_alive_s)
        tools = tools_field(body) if self.kind == "chat" else ()
        card = self.card_or_404(requested)  # before any image is decoded
        options = fit_context(card, options)
        messages, load_only = self._messages()

        if load_only and body.get("keep_alive") is not None and keep_alive == 0:
            await st.unload(card.name)
            self.send_json(self._envelope(requested, done_reason="unload"))
            return
        if COMPLETION not in card.capabilities:
            raise ApiError(400, f'"{requested}" does not support {self.kind}')
        if THINKING in card.capabilities:
            think = True if think is None else think
        elif think:
            raise ApiError(400, f'"{requested}" does not support thinking')
        if tools and TOOLS not in card.capabilities:
            raise ApiError(400, f'"{requested}" does not support tools')
        if string_field(body, "suffix") and INSERT not in card.capabilities:
            raise ApiError(400, f'"{requested}" does not support insert')
        if any(m.images for m in messages) and VISION not in card.capabilities:
            raise ApiError(
                400,
                f'"{requested}" does not support vision: images need a vision model '
                "such as gemma3:4b",
            )

        if load_only:  # Ollama only schedules (loads) the model: no generation slot is taken
            entry = await self.load_model(card, options, keep_alive)
            try:
                self.send_json(self._envelope(requested, done_reason="load"))
            finally:
                await st.release_model(entry, keep_alive)
            return
        queued_at = time.monotonic()
        try:
            await st.slots.acquire(card.name)
        except ServerBusy as exc:
            raise ApiError(503, str(exc)) from exc
        held = True

        def free_slot() -> None:
            nonlocal held
            if held:
                held = False
                st.slots.release(card.name)

        # Ollama waits for a slot after its load checkpoint: the wait is in total_duration
        # but not in load_duration, so a client can see it.
        self.started += time.monotonic() - queued_at
        try:
            entry = await self.load_model(card, options, keep_alive)
            try:
                loaded_at = time.monotonic()
                request = GenerationRequest(
                    kind=self.kind, messages=messages, options=options, format=fmt,
                    think=think or False, tools=tools, raw=bool_field(body, "raw", False),
                    truncate=bool_field(body, "truncate", True),
                    context=context_field(body) if self.kind == "generate" else (),
                )  # fmt: skip
                await self._generate(card, entry, request, requested, stream, loaded_at, free_slot)
            finally:
                await st.release_model(entry, keep_alive)
        finally:
            free_slot()

    def _envelope(self, model: str, *, done_reason: str | None = None) -> JsonObject:
        """The fields every chat/generate object carries."""
        obj: JsonObject = {"model": model, "created_at": now_rfc3339()}
        if self.kind == "chat":
            obj["message"] = {"role": "assistant", "content": ""}
        else:
            obj["response"] = ""
        if done_reason is not None:
            obj["done"] = True
            obj["done_reason"] = done_reason
        else:
            obj["done"] = False
        return obj

    def _chunk(self, model: str, piece: Piece) -> JsonObject:
        obj = self._envelope(model)
        if self.kind == "chat":
            message: JsonObject = {"role": "assistant", "content": piece.content}
            if piece.thinking:
                message["thinking"] = piece.thinking
            if piece.tool_calls:
                message["tool_calls"] = _tool_calls_json(piece.tool_calls)
            obj["message"] = message
        else:
            obj["response"] = piece.content
            if piece.thinking:
                obj["thinking"] = piece.thinking
        return obj

    async def _generate(
        self, card: ModelCard, entry: Loaded, request: GenerationRequest, model: str,
        stream: bool, loaded_at: float, free_slot: Callable[[], None],
    ) -> None:  # fmt: skip
        """Stream the engine's pieces, then the final object with Ollama's timings.

        Like Ollama's runner, the slot is freed when generation ends, before the final
        object is written: a client that has read ``done`` may send its next request at
        once and find the slot free, not queued behind a reply it already has.
        """
        engine = self.state.engine_for(card)
        content: list[str] = []
        thinking: list[str] = []
        calls: list[ToolCall] = []
        emitted = 0
        first_at: float | None = None
        finish = Finish("stop", 0)
        async with contextlib.aclosing(engine.generate(card, request)) as pieces:
            # The first item is awaited before the 200 goes out, so an engine can still
            # refuse the request with a status (e.g. a prompt longer than num_ctx).
            head = await anext(pieces, None)
            if stream:
                await self.start_stream(self.stream_type)
            async for item in _prepend(head, pieces):
                if isinstance(item, Finish):
                    finish = item
                    break
                if await self.interrupt(emitted, stream):
                    return
                first_at = first_at or time.monotonic()
                emitted += 1
                if stream:
                    await self.emit_chunk(self._chunk(model, item))
                else:
                    content.append(item.content)
                    thinking.append(item.thinking)
                    calls.extend(item.tool_calls)
        free_slot()
        if await self.interrupt(emitted, stream, final=True):
            return
        end = time.monotonic()
        first = first_at if first_at is not None else end
        final = self._envelope(model, done_reason=finish.done_reason)
        if not stream:
            final.update(
                self._chunk(model, Piece("".join(content), "".join(thinking), tuple(calls)))
            )
            final["done"] = True
            final["done_reason"] = finish.done_reason
        if self.kind == "generate" and not request.raw:
            final["context"] = list(finish.context) if finish.context is not None else []
        final.update(
            {
                "total_duration": ns(end - self.received),
                "load_duration": ns(loaded_at - self.started),
                # Like Ollama, a prompt longer than the context is cut to fit it.
                "prompt_eval_count": min(finish.prompt_tokens, entry.context_length),
                "prompt_eval_duration": ns(
                    first - loaded_at if finish.prompt_eval_s is None else finish.prompt_eval_s
                ),
                "eval_count": emitted if finish.eval_tokens is None else finish.eval_tokens,
                "eval_duration": ns(end - first if finish.eval_s is None else finish.eval_s),
            }
        )
        if stream:
            await self.emit_last(final)
        else:
            self.emit_whole(final)


class ChatHandler(InferenceHandler):
    """``POST /api/chat``."""

    kind = "chat"


class GenerateHandler(InferenceHandler):
    """``POST /api/generate``."""

    kind = "generate"


async def _prepend(
    head: Piece | Finish | None, rest: AsyncIterator[Piece | Finish]
) -> AsyncIterator[Piece | Finish]:
    """``head`` (if any) followed by the rest of the engine's stream."""
    if head is None:
        return
    yield head
    async for item in rest:
        yield item


def _tool_calls_json(calls: tuple[ToolCall, ...]) -> list[object]:
    return [
        {
            "id": f"call_{zlib.crc32(f'{c.name}{i}'.encode()):08x}",
            "function": {"index": i, "name": c.name, "arguments": dict(c.arguments)},
        }
        for i, c in enumerate(calls)
    ]


def _decode_images(value: object) -> tuple[ImageInfo, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ApiError(400, "json: cannot unmarshal images: expected an array")
    try:
        return tuple(decode_image(item) for item in value)
    except ImageDecodeError as exc:
        raise ApiError(400, str(exc)) from exc


class EmbedHandler(ApiHandler):
    """``POST /api/embed`` and the legacy ``POST /api/embeddings``."""

    legacy: ClassVar[bool] = False
    started: float

    async def post(self) -> None:
        """Normalised, deterministic vectors with Ollama's timing fields."""
        self.started = time.monotonic()
        await self.guarded(self._embed())

    def _inputs(self) -> list[str]:
        if self.legacy:
            prompt = string_field(self.body, "prompt")
            return [prompt] if prompt else []
        value = self.body.get("input")
        if value is None:
            return []
        if isinstance(value, str):
            return [value] if value else []
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ApiError(400, "invalid input type")

    async def _embed(self) -> None:
        body, st = self.body, self.state
        requested = model_field(body)
        inputs = self._inputs()
        options = options_field(body)
        keep_alive = keep_alive_field(body, st.config.keep_alive_s)
        dims = body.get("dimensions")
        if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int)):
            raise ApiError(400, "json: cannot unmarshal dimensions: expected an integer")
        bool_field(body, "truncate", True)
        card = self.card_or_404(requested)
        options = fit_context(card, options)
        try:
            await st.slots.acquire(card.name)
        except ServerBusy as exc:
            raise ApiError(503, str(exc)) from exc
        try:
            entry = await self.load_model(card, options, keep_alive)
            try:
                loaded_at = time.monotonic()
                results = await st.engine_for(card).embed(card, inputs) if inputs else []
            finally:
                await st.release_model(entry, keep_alive)
        finally:
            st.slots.release(card.name)
        vectors = [_normalize(list(r.vector), dims) for r in results]
        if self.legacy:
            self.send_json({"embedding": vectors[0] if vectors else []})
            return
        if not inputs:
            self.emit_whole({"model": requested, "embeddings": [], "prompt_eval_count": 0})
            return
        end = time.monotonic()
        self.emit_whole(
            {
                "model": requested,
                "embeddings": vectors,
                "total_duration": ns(end - self.started),
                "load_duration": ns(loaded_at - self.started),
                "prompt_eval_count": sum(r.tokens for r in results),
            }
        )


class LegacyEmbeddingsHandler(EmbedHandler):
    """``POST /api/embeddings`` (superseded by ``/api/embed``, still served by Ollama)."""

    legacy = True


def _normalize(vector: list[float], dims: int | None) -> list[float]:
    """Unit length, as Ollama normalises; ``dimensions`` truncates and renormalises."""
    if dims is not None and 0 < dims < len(vector):
        vector = vector[:dims]
    norm = math.sqrt(sum(v * v for v in vector))
    scale = 1.0 / max(norm, 1e-12)
    return [v * scale for v in vector]


Route = tuple[str, type[BaseHandler], Mapping[str, object]]


def native_routes(state: ServerState) -> list[Route]:
    """The route table for Ollama's own endpoints (``/`` and ``/api/*``)."""
    kwargs = {"state": state}
    return [
        (r"/", RootHandler, kwargs),
        (r"/api/version", VersionHandler, kwargs),
        (r"/api/tags", TagsHandler, kwargs),
        (r"/api/show", ShowHandler, kwargs),
        (r"/api/ps", PsHandler, kwargs),
        (r"/api/chat", ChatHandler, kwargs),
        (r"/api/generate", GenerateHandler, kwargs),
        (r"/api/embed", EmbedHandler, kwargs),
        (r"/api/embeddings", LegacyEmbeddingsHandler, kwargs),
        (r"/api/pull", PullHandler, kwargs),
        (r"/api/delete", DeleteHandler, kwargs),
        (r"/api/copy", CopyHandler, kwargs),
        (r"/api/create", UnsupportedHandler, {**kwargs, "action": "create"}),
        (r"/api/push", UnsupportedHandler, {**kwargs, "action": "push"}),
        (r"/api/blobs/([^/]+)", UnsupportedHandler, {**kwargs, "action": "create"}),
    ]
