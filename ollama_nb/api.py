"""The Python API: the same requests the magics send, for people who prefer code.

Sync functions block the calling thread (a notebook cell) while the request
runs on the shared background loop; ``a``-prefixed twins are awaitable from an
async cell. All of them use the process-wide settings, client and metrics.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import replace
from typing import Any, Unpack

from .application import use_cases
from .application.context_guard import (
    ContextCheck,
    ContextLengthWarning,
    check_context,
    needs_check,
    server_context_length,
)
from .application.reply_stream import ReplyStream
from .application.tool_loop import ToolLoop
from .application.tools import Tool, ToolOutcome, ToolSet
from .domain import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbedRequest,
    EmbedResult,
    GenerateRequest,
    ModelInfo,
    ModelName,
    ModelSummary,
    PullProgress,
    RunningModel,
)
from .domain.images import PreparedImage
from .image_reference import resolve_image
from .request_builder import Messages, RequestArguments, RequestBuilder, resolve_model
from .runtime import Runtime, get_runtime


def encode_images(images: Sequence[object] | None) -> tuple[str, ...]:
    """Base64 text for Ollama from any image source, shrunk and cached by ``ollama_nb.vision``.

    PIL images, paths, bytes, base64 text or ``data:`` URLs (the prefix Ollama
    rejects is dropped), NumPy arrays, matplotlib figures and IPython images
    all go through the same pipeline the ``%%chat --image`` magic uses.
    """
    return tuple(image.to_base64() for image in prepare(images))


def prepare(images: Sequence[object] | None) -> list[PreparedImage]:
    """Run sources through the vision pipeline; already prepared images pass as they are."""
    if not images:
        return []
    if all(isinstance(image, PreparedImage) for image in images):
        return [image for image in images if isinstance(image, PreparedImage)]
    from .vision import prepare_images

    return prepare_images([resolve_image(i) if isinstance(i, str) else i for i in images])


def chat_request(
    prompt: Messages,
    *,
    images: Sequence[object] | None = None,
    runtime: Runtime | None = None,
    **arguments: Unpack[RequestArguments],
) -> ChatRequest:
    """The ``/api/chat`` request ``chat`` would send (images go through the vision pipeline)."""
    runtime = runtime or get_runtime()
    builder = RequestBuilder.from_user(runtime.settings, discover=runtime.choose_model, **arguments)
    return builder.chat(prompt, encode_images(images))


def generate_request(
    prompt: str,
    *,
    images: Sequence[object] | None = None,
    runtime: Runtime | None = None,
    **arguments: Unpack[RequestArguments],
) -> GenerateRequest:
    """The ``/api/generate`` request ``generate`` would send."""
    runtime = runtime or get_runtime()
    builder = RequestBuilder.from_user(runtime.settings, discover=runtime.choose_model, **arguments)
    return builder.generate(prompt, encode_images(images))


def chat(
    prompt: Messages,
    *,
    images: Sequence[object] | None = None,
    stream: bool = True,
    on_chunk: Callable[[ChatChunk], None] | None = None,
    tools: Sequence[Callable[..., Any] | Tool] | None = None,
    max_rounds: int | None = None,
    on_tool: Callable[[ToolOutcome], None] | None = None,
    **arguments: Unpack[RequestArguments],
) -> ChatResult:
    """Ask a chat model and wait for the whole answer.

    ``prompt`` is the user's message, or a list of messages for a full
    conversation. ``model``, ``system``, ``options``, ``format``, ``think`` and
    ``keep_alive`` are Ollama's (typed in ``RequestArguments``); ``images`` are
    any image sources, shrunk for the model. ``stream=False`` asks the server
    for the answer in one piece. ``on_chunk`` sees each streamed piece as it arrives.
    ``tools`` are functions the model may call (their schema comes from the
    signature, type hints and docstring); calls run here, at most
    ``max_rounds`` rounds, each outcome passed to ``on_tool``; the rounds are
    in the result's ``exchange``. Interrupting keeps what arrived: the
    ``KeyboardInterrupt`` carries it as ``partial``.
    """
    runtime = get_runtime()
    prepared = prepare(images)
    request = chat_request(prompt, runtime=runtime, images=prepared, **arguments)
    check = _warn_if_long(request, context_check(request, runtime))
    reply = ReplyStream(
        request,
        tools=_tool_loop(runtime, tools, max_rounds),
        stream=stream,
        image_bytes_saved=_saved(prepared),
    )
    return flag_truncation(_run(runtime, reply, on_chunk, on_tool), check)


def _tool_loop(
    runtime: Runtime, tools: Sequence[Callable[..., Any] | Tool] | None, max_rounds: int | None
) -> ToolLoop | None:
    """The user's functions, bounded by the tool settings (``max_rounds`` given wins)."""
    return runtime.tool_loop(ToolSet.from_functions(tools), max_rounds) if tools else None


def _run(
    runtime: Runtime,
    reply: ReplyStream,
    on_chunk: Callable[[ChatChunk], None] | None = None,
    on_tool: Callable[[ToolOutcome], None] | None = None,
) -> ChatResult:
    """Drain ``reply`` on the loop thread; Ctrl-C carries what arrived as ``partial``."""
    try:
        return runtime.run(lambda ports: reply.result(ports, on_chunk=on_chunk, on_tool=on_tool))
    except KeyboardInterrupt as interrupt:
        interrupt.partial = reply.partial()  # type: ignore[attr-defined]
        raise


def generate(
    prompt: str,
    *,
    images: Sequence[object] | None = None,
    stream: bool = True,
    on_chunk: Callable[[ChatChunk], None] | None = None,
    **arguments: Unpack[RequestArguments],
) -> ChatResult:
    """One-shot completion through ``/api/generate``; arguments as ``chat``."""
    runtime = get_runtime()
    prepared = prepare(images)
    request = generate_request(prompt, runtime=runtime, images=prepared, **arguments)
    check = _warn_if_long(request, context_check(request, runtime))
    reply = ReplyStream(request, stream=stream, image_bytes_saved=_saved(prepared))
    return flag_truncation(_run(runtime, reply, on_chunk), check)


def context_check(
    request: ChatRequest | GenerateRequest, runtime: Runtime | None = None
) -> ContextCheck | None:
    """The context check for a long prompt (None for a short one: no server call)."""
    if not needs_check(request):
        return None
    return (runtime or get_runtime()).run(_checker(request))


def _checker(
    request: ChatRequest | GenerateRequest,
) -> Callable[[use_cases.Ports], Coroutine[Any, Any, ContextCheck]]:
    return lambda ports: check_context(ports, request, server_context_length())


def _warn_if_long(
    request: ChatRequest | GenerateRequest, check: ContextCheck | None
) -> ContextCheck | None:
    """One line before sending, naming the setting to raise."""
    if check is not None and check.may_not_fit:
        warnings.warn(check.warning(), ContextLengthWarning, stacklevel=3)
    return check


def flag_truncation(result: ChatResult, check: ContextCheck | None) -> ChatResult:
    """``result.truncated`` when the server's prompt count says the start was dropped."""
    count = result.timings.prompt_eval_count
    if check is None or not check.truncated(count):
        return result
    warnings.warn(check.truncation_note(count), ContextLengthWarning, stacklevel=3)
    return replace(result, truncated=True)


def _saved(images: Sequence[PreparedImage]) -> int:
    return sum(image.bytes_saved for image in images)


async def achat(
    prompt: Messages,
    *,
    images: Sequence[object] | None = None,
    stream: bool = True,
    tools: Sequence[Callable[..., Any] | Tool] | None = None,
    max_rounds: int | None = None,
    on_tool: Callable[[ToolOutcome], None] | None = None,
    **arguments: Unpack[RequestArguments],
) -> ChatResult:
    """``chat`` for async cells: ``result = await ollama_nb.achat("...")``."""
    runtime = get_runtime()
    prepared = prepare(images)
    request = chat_request(prompt, runtime=runtime, images=prepared, **arguments)
    checked = await runtime.arun(_checker(request)) if needs_check(request) else None
    check = _warn_if_long(request, checked)
    reply = ReplyStream(
        request,
        tools=_tool_loop(runtime, tools, max_rounds),
        stream=stream,
        image_bytes_saved=_saved(prepared),
    )
    result = await runtime.arun(lambda ports: reply.result(ports, on_tool=on_tool))
    return flag_truncation(result, check)


async def agenerate(
    prompt: str,
    *,
    images: Sequence[object] | None = None,
    stream: bool = True,
    **arguments: Unpack[RequestArguments],
) -> ChatResult:
    """``generate`` for async cells."""
    runtime = get_runtime()
    prepared = prepare(images)
    request = generate_request(prompt, runtime=runtime, images=prepared, **arguments)
    checked = await runtime.arun(_checker(request)) if needs_check(request) else None
    check = _warn_if_long(request, checked)
    reply = ReplyStream(request, stream=stream, image_bytes_saved=_saved(prepared))
    return flag_truncation(await runtime.arun(reply.result), check)


def stream_chat(
    prompt: Messages,
    *,
    images: Sequence[object] | None = None,
    **arguments: Unpack[RequestArguments],
) -> Iterator[str]:
    """Yield the answer's text piece by piece (for loops and simple UIs)."""
    runtime = get_runtime()
    request = chat_request(prompt, runtime=runtime, images=images, **arguments)

    for item in runtime.iterate(ReplyStream(request).items):
        if isinstance(item, ChatChunk) and item.content:
            yield item.content


def embed(
    texts: str | Sequence[str], *, model: str | None = None, dimensions: int | None = None
) -> EmbedResult:
    """One vector per text (``/api/embed``); ``dimensions`` truncates them where the model allows."""
    runtime = get_runtime()
    request = _embed_request(texts, model, dimensions, runtime)
    return runtime.run(lambda ports: use_cases.embed(ports, request))


async def aembed(
    texts: str | Sequence[str], *, model: str | None = None, dimensions: int | None = None
) -> EmbedResult:
    """``embed`` for async cells."""
    runtime = get_runtime()
    request = _embed_request(texts, model, dimensions, runtime)
    return await runtime.arun(lambda ports: use_cases.embed(ports, request))


def _embed_request(
    texts: str | Sequence[str], model: str | None, dimensions: int | None, runtime: Runtime
) -> EmbedRequest:
    return EmbedRequest(
        model=resolve_model(model, runtime.settings, runtime.choose_model, "embedding"),
        inputs=(texts,) if isinstance(texts, str) else tuple(texts),
        dimensions=dimensions,
    )


def models() -> list[ModelSummary]:
    """Installed models (``/api/tags``)."""
    return get_runtime().run(use_cases.list_models)


def show(model: str) -> ModelInfo:
    name = ModelName(model)
    return get_runtime().run(lambda ports: use_cases.show_model(ports, name))


def ps() -> list[RunningModel]:
    """Loaded models (``/api/ps``)."""
    return get_runtime().run(use_cases.running_models)


def pull(model: str) -> Iterator[PullProgress]:
    """Download a model; yields progress steps."""
    name = ModelName(model)
    return get_runtime().iterate(lambda ports: use_cases.pull(ports, name))


def delete(model: str) -> None:
    name = ModelName(model)
    get_runtime().run(lambda ports: use_cases.delete_model(ports, name))


def copy(source: str, destination: str) -> None:
    src, dst = ModelName(source), ModelName(destination)
    get_runtime().run(lambda ports: use_cases.copy_model(ports, src, dst))


def version() -> str:
    return get_runtime().run(use_cases.server_version)


def configure(**changes: Any) -> None:
    """Change settings for this process (host, default_model, timeouts, parallel, ...)."""
    get_runtime().configure(**changes)
