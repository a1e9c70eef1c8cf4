"""The Ollama REST API over one pooled ``httpx.AsyncClient``.

Everything below ``httpx`` is translated here into the domain's errors, so no
caller ever sees an httpx exception. Streams are parsed line by line as NDJSON;
an ``{"error": ...}`` line inside a 200 stream is raised as a typed error.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from typing import Any

import httpx

from .._version import __version__
from ..application.ports import BreakerState, Clock
from ..domain import (
    BadRequestError,
    ChatChunk,
    ChatRequest,
    ConnectionLostError,
    EmbedRequest,
    EmbedResult,
    GenerateRequest,
    HostNotAllowedError,
    ModelInfo,
    ModelName,
    ModelNotFoundError,
    ModelSummary,
    PullProgress,
    RequestTimeoutError,
    RunnerError,
    RunningModel,
    ServerBusyError,
    ServerError,
    ServerUnavailableError,
    StreamError,
    Timings,
    ToolCall,
)
from .resilience import CircuitBreaker, RetryPolicy

_USER_AGENT = f"ollama_nb/{__version__}"


def error_for_status(status: int, message: str, *, model: str | None, host: str) -> ServerError:
    """Map an HTTP error answer to the domain error a user can act on."""
    if status == 404 and model:
        return ModelNotFoundError(model, message, status_code=status)
    if status == 400:
        return BadRequestError(message, status_code=status)
    if status == 403:
        return HostNotAllowedError(
            message or "forbidden",
            status_code=status,
            hint=f"The server at {host} refused this request: Ollama on 127.0.0.1 only accepts "
            "requests addressed to a local name, and checks OLLAMA_ORIGINS for browsers. "
            "Connect as 127.0.0.1/localhost or start the server with OLLAMA_HOST=0.0.0.0.",
        )
    if status == 503:
        return ServerBusyError(
            message or "server busy",
            status_code=status,
            hint="Ollama's queue is full (OLLAMA_MAX_QUEUE); lower the concurrency or retry later.",
        )
    if status >= 500:
        return RunnerError(
            message or f"HTTP {status}",
            status_code=status,
            hint="The model runner failed; the server log (`%ollama start` keeps one) says why, "
            "often memory: try a smaller model or num_ctx.",
        )
    return ServerError(message or f"HTTP {status}", status_code=status)


def _error_line(message: str, model: str | None) -> ServerError:
    if model and "not found" in message and "model" in message:
        return ModelNotFoundError(model, message, status_code=200)
    return StreamError(message, status_code=200)


class HttpOllamaGateway:
    """One Ollama server. Create it on the event loop that will use it."""

    def __init__(
        self,
        base_url: str,
        *,
        clock: Clock,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 330.0,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        on_busy: Callable[[], None] | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._on_busy = on_busy  # told of every 503, so the concurrency controller backs off
        self._retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(self._base_url, clock)
        self._sleep = sleep
        #: Absolute URLs per path, parsed once: httpx re-parses and joins a relative
        #: path on every request, a measurable share of a fast local call.
        self._urls: dict[str, httpx.URL] = {}
        self._client = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=httpx.Timeout(
                connect=connect_timeout_s, read=read_timeout_s, write=30.0, pool=None
            ),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            headers={"User-Agent": _USER_AGENT},
            transport=transport,
        )

    @property
    def host(self) -> str:
        return self._base_url

    @property
    def breaker_state(self) -> BreakerState:
        return self.breaker.state

    async def aclose(self) -> None:
        await self._client.aclose()

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = self._client.base_url.join(path)
        return url

    # --- connection, retries, errors ------------------------------------------

    async def _open(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        model: str | None,
        stream: bool = True,
    ) -> tuple[httpx.Response, int]:
        """Send and return the response with the retry count.

        With ``stream`` the response is open once headers arrive; without it the
        body is read in the same pass, which saves event-loop round trips for the
        many small requests (catalogue calls, non-streamed answers, batches).
        """
        retries = 0
        while True:
            self.breaker.before_request()
            request = self._client.build_request(method, self._url(path), json=body)
            try:
                response = await self._client.send(request, stream=stream)
            except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
                if stream:
                    self.breaker.record_failure()
                    raise ServerUnavailableError(self._base_url, _describe(exc)) from None
                self.breaker.record_success()  # it answered, then broke off
                raise ConnectionLostError(self._base_url, _describe(exc)) from None
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                self.breaker.record_failure()
                if retries < self._retry.attempts and self.breaker.state == "closed":
                    await self._sleep(self._retry.delay(retries))
                    retries += 1
                    continue
                raise ServerUnavailableError(self._base_url, _describe(exc)) from None
            except httpx.TimeoutException as exc:
                self.breaker.record_success()  # it accepted the connection: it is alive
                raise RequestTimeoutError(
                    f"The server at {self._base_url} did not answer in time ({_describe(exc)}).",
                    hint="A large model may still be loading; raise read_timeout_s with "
                    "`%ollama config read_timeout_s=600` if this keeps happening.",
                ) from None
            except httpx.HTTPError as exc:
                self.breaker.record_failure()
                raise ServerUnavailableError(self._base_url, _describe(exc)) from None
            self.breaker.record_success()
            if response.status_code < 400:
                return response, retries
            message = await _error_message(response)
            if response.status_code == 503 and self._on_busy is not None:
                self._on_busy()
            if response.status_code == 503 and retries < self._retry.attempts:
                await self._sleep(self._retry.delay(retries))
                retries += 1
                continue
            raise error_for_status(response.status_code, message, model=model, host=self._base_url)

    async def _lines(
        self, method: str, path: str, body: dict[str, Any], *, model: str | None
    ) -> AsyncGenerator[tuple[dict[str, Any], int], None]:
        """Yield each NDJSON object of an answer with the retry count."""
        stream = body.get("stream", True) is not False
        response, retries = await self._open(method, path, body, model=model, stream=stream)
        lines = _ndjson_lines(response) if stream else _aiter(response.content.split(b"\n"))
        try:
            async for line in lines:
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    text = line[:80].decode("utf-8", "replace")
                    raise StreamError(
                        f"the server sent a line that is not JSON: {text!r}"
                    ) from None
                if isinstance(data, dict) and data.get("error"):
                    raise _error_line(str(data["error"]), model)
                if not isinstance(data, dict):
                    raise StreamError(f"the server sent {type(data).__name__} instead of an object")
                yield data, retries
        except httpx.TimeoutException as exc:
            raise RequestTimeoutError(
                f"The server at {self._base_url} stopped sending mid-answer ({_describe(exc)})."
            ) from None
        except httpx.HTTPError as exc:
            raise ConnectionLostError(self._base_url, _describe(exc)) from None
        finally:
            await response.aclose()

    async def _json(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        model: str | None = None,
    ) -> Any:
        response, _ = await self._open(method, path, body, model=model, stream=False)
        raw = response.content
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            raise StreamError(
                f"the server answered with something that is not JSON: {raw[:80]!r}"
            ) from None
        if isinstance(data, dict) and data.get("error"):
            raise _error_line(str(data["error"]), model)
        return data

    # --- generation ------------------------------------------------------------

    async def chat(
        self, request: ChatRequest, *, stream: bool = True
    ) -> AsyncGenerator[ChatChunk, None]:
        async for chunk in self._generation(
            "/api/chat", request.to_wire(stream=stream), request.model
        ):
            yield chunk

    async def generate(
        self, request: GenerateRequest, *, stream: bool = True
    ) -> AsyncGenerator[ChatChunk, None]:
        async for chunk in self._generation(
            "/api/generate", request.to_wire(stream=stream), request.model
        ):
            yield chunk

    async def _generation(
        self, path: str, body: dict[str, Any], model: ModelName
    ) -> AsyncGenerator[ChatChunk, None]:
        finished = False
        async for data, retries in self._lines("POST", path, body, model=model.value):
            chunk = _chunk_from_wire(data)
            if chunk.done:
                finished = True
                if retries:
                    timings = chunk.timings or Timings()
                    chunk = replace(chunk, timings=replace(timings, retries=retries))
            yield chunk
        if not finished:
            raise StreamError(
                f"the server at {self._base_url} ended the answer without finishing it"
            )

    # --- everything else ---------------------------------------------------------

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        data = await self._json("POST", "/api/embed", request.to_wire(), model=request.model.value)
        vectors = tuple(tuple(float(x) for x in vector) for vector in data.get("embeddings") or ())
        return EmbedResult(
            model=str(data.get("model") or request.model.value),
            embeddings=vectors,
            timings=Timings.from_wire(data),
        )

    async def list_models(self) -> list[ModelSummary]:
        data = await self._json("GET", "/api/tags")
        return [ModelSummary.from_wire(m) for m in data.get("models") or ()]

    async def show(self, model: ModelName) -> ModelInfo:
        data = await self._json("POST", "/api/show", {"model": model.value}, model=model.value)
        return ModelInfo.from_wire(model.value, data)

    async def running(self) -> list[RunningModel]:
        data = await self._json("GET", "/api/ps")
        return [RunningModel.from_wire(m) for m in data.get("models") or ()]

    async def pull(self, model: ModelName) -> AsyncGenerator[PullProgress, None]:
        succeeded = False
        try:
            async for data, _ in self._lines(
                "POST", "/api/pull", {"model": model.value, "stream": True}, model=None
            ):
                step = PullProgress(
                    status=str(data.get("status") or ""),
                    digest=data.get("digest"),
                    total=data.get("total"),
                    completed=data.get("completed"),
                )
                succeeded = succeeded or step.status == "success"
                yield step
        except StreamError as exc:
            if "does not exist" in exc.server_message or "not found" in exc.server_message:
                error = ModelNotFoundError(model.value, exc.server_message, status_code=200)
                error.message = f"The registry has no model called {model.value!r}."
                error.hint = "Check the spelling and tag on ollama.com/library."
                error.args = (f"{error.message} {error.hint}",)
                raise error from exc
            raise
        if not succeeded:
            raise StreamError(f"the pull of {model.value!r} ended without 'success'")

    async def delete(self, model: ModelName) -> None:
        await self._json("DELETE", "/api/delete", {"model": model.value}, model=model.value)

    async def copy(self, source: ModelName, destination: ModelName) -> None:
        await self._json(
            "POST",
            "/api/copy",
            {"source": source.value, "destination": destination.value},
            model=source.value,
        )

    async def version(self) -> str:
        data = await self._json("GET", "/api/version")
        return str(data.get("version") or "")

    async def is_alive(self) -> bool:
        """``HEAD /`` without retries: a status check must answer fast."""
        try:
            response = await self._client.head("/", timeout=self._client.timeout.connect)
        except httpx.HTTPError:
            return False
        return response.status_code < 400


async def _aiter(items: list[bytes]) -> AsyncGenerator[bytes, None]:
    for item in items:
        yield item


async def _ndjson_lines(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The body's lines as bytes, for ``json.loads`` (NDJSON is UTF-8 by definition).

    ``aiter_lines`` would decode to text first, looking up the charset per chunk;
    splitting the raw bytes is the same result for a fraction of a local call's cost.
    """
    pending = b""
    async for block in response.aiter_bytes():
        pending += block
        if b"\n" not in block:
            continue
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line
    if pending:
        yield pending


def _chunk_from_wire(data: dict[str, Any]) -> ChatChunk:
    message = data.get("message")
    if isinstance(message, dict):
        content = str(message.get("content") or "")
        thinking = str(message.get("thinking") or "")
        calls = _tool_calls(message.get("tool_calls"))
    else:
        content = str(data.get("response") or "")
        thinking = str(data.get("thinking") or "")
        calls = ()
    done = bool(data.get("done"))
    return ChatChunk(
        content=content,
        thinking=thinking,
        tool_calls=calls,
        done=done,
        done_reason=data.get("done_reason") if done else None,
        model=str(data.get("model") or ""),
        timings=Timings.from_wire(data) if done else None,
        context=tuple(data.get("context") or ()) if done else (),
    )


def _tool_calls(wire: object) -> tuple[ToolCall, ...]:
    """A reply's tool calls as sent; a call of the wrong shape is kept, marked malformed."""
    if wire is None:
        return ()
    if not isinstance(wire, list):
        return (ToolCall("", malformed=f"tool_calls must be a list, got {_json_type(wire)}"),)
    return tuple(_tool_call(call) for call in wire)


def _tool_call(call: object) -> ToolCall:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        return ToolCall("", malformed="a tool call must name a function")
    raw_name = function.get("name")
    name = raw_name if isinstance(raw_name, str) else ""
    arguments = function.get("arguments")
    if arguments is None:
        return ToolCall(name)
    if isinstance(arguments, dict):
        return ToolCall(name, arguments)
    if isinstance(arguments, str):  # JSON text instead of an object: parsed under a size cap
        return ToolCall(name, raw_arguments=arguments)
    return ToolCall(name, malformed=f"arguments must be a JSON object, got {_json_type(arguments)}")


def _json_type(value: object) -> str:
    kinds = {bool: "a boolean", dict: "an object", list: "an array", str: "a string"}
    return next((k for t, k in kinds.items() if isinstance(value, t)), "a number")


async def _error_message(response: httpx.Response) -> str:
    try:
        raw = await response.aread()
    except httpx.HTTPError:
        return ""
    finally:
        await response.aclose()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace").strip()[:500]
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return raw.decode("utf-8", "replace").strip()[:500]


def _describe(exc: Exception) -> str:
    cause: BaseException | None = exc
    while cause is not None:  # httpx hides the OS error a few causes down
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
