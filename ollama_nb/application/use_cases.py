"""What a user can ask of Ollama, independent of the surface that asks.

Use cases are plain functions taking their ports (``Ports``), async where they
talk to a server (``health`` only reads memory, so a status line can redraw
without a loop trip). Every request that reaches a model goes through the
concurrency gate and leaves one ``RequestEvent`` in the metrics sink, whether it
succeeded, failed or was interrupted. Surfaces drain a reply through
``reply_stream.ReplyStream``, which is built on ``stream_reply`` here.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import random
from collections.abc import AsyncGenerator, Callable, Collection
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Literal

from ..domain import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbedRequest,
    EmbedResult,
    GenerateRequest,
    InvalidInputError,
    ModelInfo,
    ModelName,
    ModelNotFoundError,
    ModelSummary,
    OllamaNbError,
    PullProgress,
    RequestEvent,
    RequestKind,
    RequestStatus,
    RunningModel,
    Timings,
)
from .model_infos import ModelInfos
from .ports import (
    BreakerState,
    Clock,
    ConcurrencyGate,
    GateStats,
    Lane,
    MetricsSink,
    OllamaGateway,
    Priority,
)
from .replies import ReplyAccumulator


@dataclass(frozen=True, slots=True)
class Ports:
    """Everything a use case may touch, handed in by the composition root."""

    gateway: OllamaGateway
    gate: ConcurrencyGate
    metrics: MetricsSink
    clock: Clock
    project: str | None = None
    keep_history: bool = True
    #: ``/api/show`` answers; the composition root passes one per process, so a batch
    #: asks once per model, not once per row (see ``model_infos``).
    model_infos: ModelInfos = field(default_factory=ModelInfos)


def new_request_id() -> str:
    """12 hex digits naming a request in logs; unique enough, not a secret.

    ``uuid4`` reads ``os.urandom`` (a system call) for bits we then mostly drop.
    """
    return f"{random.getrandbits(48):012x}"


def _kind_and_lane(request: ChatRequest | GenerateRequest) -> tuple[RequestKind, Lane]:
    if request.image_count:
        return "vision", "vision"
    return ("chat" if isinstance(request, ChatRequest) else "generate"), "text"


def _prompt_text(request: ChatRequest | GenerateRequest) -> str:
    if isinstance(request, GenerateRequest):
        return request.prompt
    last = request.messages[-1]
    if last.role == "tool":  # a tool round: what the model was sent back
        return f"[tool {last.tool_name}] {last.content}"
    users = [m.content for m in request.messages if m.role == "user"]
    return users[-1] if users else ""


def _response_text(acc: ReplyAccumulator) -> str:
    """The answer, plus the calls a tool round asked for (kept only when history is on)."""
    calls = [f"[call {c.name}({json.dumps(dict(c.arguments))})]" for c in acc.tool_calls]
    return "\n".join([acc.text, *calls]) if calls else acc.text


async def stream_reply(
    ports: Ports,
    request: ChatRequest | GenerateRequest,
    *,
    stream: bool = True,
    accumulator: ReplyAccumulator | None = None,
    image_bytes_saved: int = 0,
    priority: Priority = "interactive",
    concurrency: int | None = None,
) -> AsyncGenerator[ChatChunk | ChatResult, None]:
    """Yield each piece of the answer as it arrives, then the finished ``ChatResult``.

    An error after text has arrived is raised with that text in ``error.partial``;
    an interruption (task cancelled, consumer stopped) is recorded as such and the
    text stays in ``accumulator`` for the caller to show. ``priority`` and
    ``concurrency`` are passed to the gate (batches send ``"batch"`` and their width).
    """
    await check_capabilities(ports, request)
    kind, lane = _kind_and_lane(request)
    acc = accumulator or ReplyAccumulator(model=request.model.value)
    acc.request_id = acc.request_id or new_request_id()
    started_at = ports.clock.time()
    status: RequestStatus = "interrupted"
    failure: OllamaNbError | None = None
    host = ports.gateway.host
    try:
        async with ports.gate.slot(
            lane, model=request.model.value, priority=priority, concurrency=concurrency
        ) as lease:
            gateway = lease.gateway or ports.gateway
            host = acc.host = gateway.host
            acc.queue_wait_s = lease.waited_s
            sent = ports.clock.monotonic()
            chunks = (
                gateway.chat(request, stream=stream)
                if isinstance(request, ChatRequest)
                else gateway.generate(request, stream=stream)
            )
            async with aclosing(chunks) as pieces:
                async for chunk in pieces:
                    if acc.ttft_s is None and (chunk.content or chunk.thinking or chunk.tool_calls):
                        acc.ttft_s = ports.clock.monotonic() - sent
                    acc.add(chunk)
                    if chunk.content or chunk.thinking or chunk.tool_calls:
                        yield chunk
            acc.latency_s = ports.clock.monotonic() - sent
            lease.timings = acc.timings()
        status = "ok"
        result = acc.result()
    except OllamaNbError as exc:
        status = "error"
        failure = exc
        if isinstance(exc, ModelNotFoundError):
            ports.model_infos.forget(ports.gateway.host, request.model)
        if acc.has_content:
            exc.partial = acc.result(interrupted=True, error=str(exc))
        raise
    finally:
        ports.metrics.record(
            RequestEvent(
                request_id=acc.request_id,
                started_at=started_at,
                kind=kind,
                model=acc.model,
                host=host,
                status=status,
                timings=acc.timings(),
                error_type=type(failure).__name__ if failure else None,
                error_message=str(failure) if failure else None,
                done_reason=acc.done_reason,
                image_count=request.image_count,
                image_bytes_saved=image_bytes_saved,
                tool_calls=len(acc.tool_calls),
                project=ports.project,
                prompt=_prompt_text(request) if ports.keep_history else None,
                response=_response_text(acc) if ports.keep_history else None,
            )
        )
    yield result


async def complete(
    ports: Ports,
    request: ChatRequest | GenerateRequest,
    *,
    stream: bool = True,
    on_chunk: Callable[[ChatChunk], None] | None = None,
    accumulator: ReplyAccumulator | None = None,
    image_bytes_saved: int = 0,
    priority: Priority = "interactive",
    concurrency: int | None = None,
) -> ChatResult:
    """Run a chat or generate request to the end and return its result."""
    result: ChatResult | None = None
    replies = stream_reply(
        ports,
        request,
        stream=stream,
        accumulator=accumulator,
        image_bytes_saved=image_bytes_saved,
        priority=priority,
        concurrency=concurrency,
    )
    async with aclosing(replies) as items:
        async for item in items:
            if isinstance(item, ChatResult):
                result = item
            elif on_chunk is not None:
                on_chunk(item)
    assert result is not None, "stream_reply always ends with a result"
    return result


def _record_simple(
    ports: Ports,
    kind: RequestKind,
    model: str,
    started_at: float,
    status: RequestStatus,
    timings: Timings,
    failure: OllamaNbError | None,
    host: str | None = None,
) -> None:
    """The event for a request without a streamed answer (embed, pull)."""
    ports.metrics.record(
        RequestEvent(
            request_id=new_request_id(),
            started_at=started_at,
            kind=kind,
            model=model,
            host=host or ports.gateway.host,
            status=status,
            timings=timings,
            error_type=type(failure).__name__ if failure else None,
            error_message=str(failure) if failure else None,
            project=ports.project,
        )
    )


async def embed(
    ports: Ports, request: EmbedRequest, *, priority: Priority = "interactive"
) -> EmbedResult:
    started_at = ports.clock.time()
    t0 = ports.clock.monotonic()
    status: RequestStatus = "interrupted"
    failure: OllamaNbError | None = None
    timings = Timings()
    host = ports.gateway.host
    try:
        async with ports.gate.slot("text", model=request.model.value, priority=priority) as lease:
            gateway = lease.gateway or ports.gateway
            host = gateway.host
            waited = lease.waited_s
            result = await gateway.embed(request)
        timings = Timings(
            total_ns=result.timings.total_ns,
            load_ns=result.timings.load_ns,
            prompt_eval_count=result.timings.prompt_eval_count,
            retries=result.timings.retries,
            latency_s=ports.clock.monotonic() - t0,
            queue_wait_s=waited,
        )
        status = "ok"
        return result
    except OllamaNbError as exc:
        status, failure = "error", exc
        raise
    finally:
        _record_simple(
            ports, "embed", request.model.value, started_at, status, timings, failure, host
        )


async def pull(ports: Ports, model: ModelName) -> AsyncGenerator[PullProgress, None]:
    """Stream pull progress; a failed or interrupted pull is recorded too."""
    started_at = ports.clock.time()
    t0 = ports.clock.monotonic()
    status: RequestStatus = "interrupted"
    failure: OllamaNbError | None = None
    ports.model_infos.forget(ports.gateway.host, model)  # a pull may replace it
    try:
        async with aclosing(ports.gateway.pull(model)) as progress:
            async for step in progress:
                yield step
        status = "ok"
    except OllamaNbError as exc:
        status, failure = "error", exc
        raise
    finally:
        timings = Timings(latency_s=ports.clock.monotonic() - t0)
        _record_simple(ports, "pull", model.value, started_at, status, timings, failure)


async def restore_keep_alive(ports: Ports, model: ModelName, hosts: Collection[str]) -> None:
    """Hand the model's unload time back to each server's own default (OLLAMA_KEEP_ALIVE).

    A batch sends a long ``keep_alive`` so its model stays loaded between rows;
    a load-only request without one resets the timer to the server's default.
    Best effort: a server that is gone by now has nothing to reset.
    """
    gateways = [g for g in ports.gate.gateways() if g.host in hosts] or [ports.gateway]
    touch = GenerateRequest(model=model, prompt="", allow_empty=True)
    for gateway in gateways:
        try:
            async with aclosing(gateway.generate(touch, stream=False)) as chunks:
                async for _ in chunks:
                    pass
        except OllamaNbError:
            continue


async def list_models(ports: Ports) -> list[ModelSummary]:
    installed = await ports.gateway.list_models()
    ports.model_infos.saw(ports.gateway.host, installed)
    return installed


async def show_model(ports: Ports, model: ModelName) -> ModelInfo:
    """Asked by the user: always the server's answer now (which refreshes the kept one)."""
    info = await ports.gateway.show(model)
    ports.model_infos.put(ports.gateway.host, model, info)
    return info


async def model_info(ports: Ports, model: ModelName) -> ModelInfo:
    """``/api/show`` for checks before a request: asked once while the model stays the same."""
    info = ports.model_infos.get(ports.gateway.host, model)
    if info is None:
        info = await ports.gateway.show(model)
        ports.model_infos.put(ports.gateway.host, model, info)
    return info


async def running_models(ports: Ports) -> list[RunningModel]:
    return await ports.gateway.running()


async def delete_model(ports: Ports, model: ModelName) -> None:
    ports.model_infos.forget(ports.gateway.host, model)
    await ports.gateway.delete(model)


async def copy_model(ports: Ports, source: ModelName, destination: ModelName) -> None:
    ports.model_infos.forget(ports.gateway.host, destination)
    await ports.gateway.copy(source, destination)


async def server_version(ports: Ports) -> str:
    return await ports.gateway.version()


async def is_alive(ports: Ports) -> bool:
    return await ports.gateway.is_alive()


EMBEDDED_SUFFIX = "-embedded"
"""How ollama_nb's embedded llama.cpp server tags its version (``0.13.0-embedded``)."""


async def choose_model(
    ports: Ports, capability: str = "completion", *, embedded_default: str | None = None
) -> ModelName:
    """The model to use when none is named and no default is set.

    For chat, the embedded server's own default (``embedded_default``, when that server
    answers and has it); else the only installed model with ``capability`` ("completion" for chat,
    "embedding" for embeddings); otherwise an error that lists what is installed, so the
    user can pick one.
    """
    installed = [m.name for m in await ports.gateway.list_models()]
    if (
        capability == "completion"
        and embedded_default is not None
        and (await ports.gateway.version()).endswith(EMBEDDED_SUFFIX)
    ):
        wanted = ModelName(embedded_default)
        match = next((name for name in installed if wanted.matches(name)), None)
        if match is not None:
            return ModelName(match)
    able = [
        name
        for name in installed
        if (await ports.gateway.show(ModelName(name))).supports(capability)
    ]
    if len(able) == 1:
        return ModelName(able[0])
    kind = "embedding" if capability == "embedding" else "chat"
    if not installed:
        listed = "No models are installed on the server."
        example = "llama3.2"
    else:
        listed = f"Installed {kind} models: {', '.join(able) or '(none)'}."
        example = (able or installed)[0]
    raise InvalidInputError(
        f"No model given and no default model set. {listed}",
        hint=f"Pass model='{example}', run `%ollama use {example}`, "
        "or set OLLAMA_NB_DEFAULT_MODEL.",
    )


@dataclass(frozen=True, slots=True)
class Health:
    """Our side of the connection, read without asking the server: breaker and queue."""

    breaker: BreakerState
    queue: GateStats


def health(ports: Ports) -> Health:
    """Synchronous on purpose: a status line redraws from memory, without a loop trip."""
    return Health(breaker=ports.gateway.breaker_state, queue=ports.gate.stats())


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What ``%ollama status`` shows: the server's answers (or why there are none), and health."""

    version: str | None
    running: list[RunningModel]
    problem: str | None
    health: Health


async def status(ports: Ports) -> ServerStatus:
    """Never raises for an unreachable server: being unreachable is a status."""
    try:
        version = await ports.gateway.version()
        running = await ports.gateway.running()
    except OllamaNbError as exc:
        return ServerStatus(None, [], str(exc), health(ports))
    return ServerStatus(version, running, None, health(ports))


async def installed_match(ports: Ports, model: ModelName) -> ModelSummary | None:
    """The installed model Ollama would use for ``model`` (``x`` == ``x:latest``)."""
    for summary in await ports.gateway.list_models():
        if model.matches(summary.name):
            return summary
    return None


async def with_suggestions(ports: Ports, error: ModelNotFoundError) -> ModelNotFoundError:
    """The same error with close installed names in its hint, when there are any."""
    try:
        names = [m.name for m in await ports.gateway.list_models()]
    except OllamaNbError:
        return error
    close = difflib.get_close_matches(error.model, names, n=3, cutoff=0.5)
    if not close:
        return error
    better = ModelNotFoundError(error.model, error.server_message, status_code=error.status_code)
    better.hint = f"Installed models with similar names: {', '.join(close)}. " + (error.hint or "")
    better.args = (f"{better.message} {better.hint}",)
    return better


CapabilityCheck = Literal["vision", "tools", "thinking", "embedding", "completion"]


def needed_capabilities(request: ChatRequest | GenerateRequest) -> list[CapabilityCheck]:
    """What the model must support for this request: images, thinking, tools."""
    needs: list[CapabilityCheck] = []
    if request.image_count:
        needs.append("vision")
    if request.think is not None and request.think is not False:
        needs.append("thinking")
    if isinstance(request, ChatRequest) and request.tools:
        needs.append("tools")
    return needs


async def check_capabilities(ports: Ports, request: ChatRequest | GenerateRequest) -> None:
    """The one check every surface gets (``stream_reply`` runs it before sending)."""
    for capability in needed_capabilities(request):
        await require_capability(ports, request.model, capability)


async def require_capability(ports: Ports, model: ModelName, capability: CapabilityCheck) -> None:
    """Fail before sending when the model cannot do what the request needs.

    The error names the installed models that can. A server that reports no
    capabilities (older Ollama) is trusted; the ``/api/show`` answer is kept while
    the model stays the same (``model_infos``), so a batch asks once, not per row.
    """
    info = await model_info(ports, model)
    if not info.capabilities or capability in info.capabilities:
        return
    summaries = await ports.gateway.list_models()
    infos = await asyncio.gather(
        *(ports.gateway.show(ModelName(s.name)) for s in summaries), return_exceptions=True
    )
    others = [
        s.name
        for s, i in zip(summaries, infos, strict=True)
        if isinstance(i, ModelInfo) and i.supports(capability)
    ]
    hint = (
        f"Installed models that can: {', '.join(others)}."
        if others
        else f"No installed model supports {capability}; pull one with `%ollama pull NAME`."
    )
    raise InvalidInputError(
        f"Model {model.value!r} does not support {capability} "
        f"(it can: {', '.join(info.capabilities)}).",
        hint=hint,
    )
