"""The one exception tree users see.

Every error carries a message a notebook user can act on in one or two lines;
surfaces print ``str(error)`` and never a traceback for these.

    OllamaNbError
    ├── InvalidInputError          the caller built a bad request (empty prompt, unknown option…)
    ├── ConfigurationError         a setting or environment variable is malformed
    ├── ServerUnavailableError     nothing answered at the host (connection refused, DNS, …)
    │   └── CircuitOpenError       we stopped trying for a while after repeated failures
    ├── RequestTimeoutError        the server accepted but did not answer in time
    └── ServerError                the server answered with an error (status_code, server_message)
        ├── BadRequestError        400
        ├── HostNotAllowedError    403: Ollama refuses non-local Host headers on loopback
        ├── ModelNotFoundError     404
        ├── RunnerError            500: the model runner crashed or failed to load
        ├── ServerBusyError        503: Ollama's queue (OLLAMA_MAX_QUEUE) is full
        └── StreamError            an ``{"error": …}`` line arrived inside a 200 stream
            └── ConnectionLostError  the connection broke mid-answer (the server may be gone)

An error raised after a stream has started keeps what already arrived in
``partial`` (a result object), so nothing the model wrote is lost.

Shown in IPython, an error is the caller's own lines and one line of ours
(``_render_traceback_``): no frames from inside ollama_nb or the libraries under
it, and no chained transport error. That error stays reachable as
``transport_error``. A magic marks the error ``one_line`` so only its message shows.
"""

from __future__ import annotations

import linecache
from typing import Any

#: Top-level modules whose frames a user cannot act on: ours, and the machinery between
#: a cell and our code (IPython's magic dispatch, the background loop, the HTTP stack).
_HIDDEN_MODULES = frozenset(
    {"ollama_nb", "IPython", "ipykernel", "asyncio", "concurrent", "threading", "contextlib",
     "httpx", "httpcore", "anyio"}
)  # fmt: skip


class OllamaNbError(Exception):
    """Base of every error ollama_nb raises on purpose."""

    #: The result received before the failure, when streaming had begun.
    partial: Any = None
    #: Set by a magic: show the message alone, as IPython shows a ``UsageError``.
    one_line: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} {hint}")

    @property
    def transport_error(self) -> BaseException | None:
        """The lower-level error (httpx's, say) this one translates, kept out of tracebacks."""
        return self.__cause__ or self.__context__

    def _render_traceback_(self) -> list[str]:
        """IPython's hook: the user's frames, then this error in one line."""
        lines: list[str] = []
        if not self.one_line:
            tb = self.__traceback__
            while tb is not None:
                frame, lineno = tb.tb_frame, tb.tb_lineno
                module = str(frame.f_globals.get("__name__", ""))
                if module.partition(".")[0] not in _HIDDEN_MODULES:
                    code = frame.f_code
                    lines.append(f"  File {code.co_filename}:{lineno}, in {code.co_name}")
                    source = linecache.getline(code.co_filename, lineno).strip()
                    if source:
                        lines.append(f"    {source}")
                tb = tb.tb_next
        lines.append(f"{type(self).__name__}: {self}")
        text = getattr(self.partial, "text", None)
        if isinstance(text, str) and text and not self.one_line:
            lines.append(f"(The {len(text):,} characters that arrived are kept in .partial.)")
        return lines


class InvalidInputError(OllamaNbError, ValueError):
    """Raised where a value is built, before anything is sent."""


class ConfigurationError(OllamaNbError, ValueError):
    """A setting could not be used; the message names the variable."""


class ServerUnavailableError(OllamaNbError, ConnectionError):
    """Nothing answered at the configured host."""

    def __init__(self, host: str, detail: str, *, hint: str | None = None) -> None:
        self.host = host
        super().__init__(
            f"Cannot reach the Ollama server at {host} ({detail}).",
            hint=hint
            or "Start it with `ollama serve` (or `%ollama start`), or point OLLAMA_HOST elsewhere.",
        )


class CircuitOpenError(ServerUnavailableError):
    """Fails fast so a dead server does not cost every cell a full timeout."""

    def __init__(self, host: str, retry_in_s: float) -> None:
        self.retry_in_s = retry_in_s
        super().__init__(
            host,
            "several connection attempts failed in a row",
            hint=f"Not trying again for {retry_in_s:.0f} s; start the server "
            "(`ollama serve` or `%ollama start`) and retry.",
        )


class RequestTimeoutError(OllamaNbError, TimeoutError):
    """The server took longer than the configured read timeout."""


class ServerError(OllamaNbError):
    """The server answered, with an error."""

    def __init__(
        self,
        server_message: str,
        *,
        status_code: int | None = None,
        hint: str | None = None,
        message: str | None = None,
    ) -> None:
        self.server_message = server_message
        self.status_code = status_code
        super().__init__(message or f"Ollama: {server_message}", hint=hint)


class BadRequestError(ServerError):
    """400: Ollama rejected the request's content."""


class HostNotAllowedError(ServerError):
    """403: Ollama listens on loopback and the Host header was not local."""


class ModelNotFoundError(ServerError):
    """404: the model is not installed on that server."""

    def __init__(self, model: str, server_message: str, *, status_code: int | None = 404) -> None:
        self.model = model
        super().__init__(
            server_message,
            status_code=status_code,
            message=f"Model {model!r} is not installed on this server.",
            hint=f"Pull it with `%ollama pull {model}` (or `ollama pull {model}`).",
        )


class RunnerError(ServerError):
    """500: the model runner failed (crash, out of memory, bad model file)."""


class ServerBusyError(ServerError):
    """503: Ollama's request queue is full."""


class StreamError(ServerError):
    """The server reported an error after the response had started."""


class ConnectionLostError(StreamError):
    """The connection broke after the answer had started: the server may have died.

    Unlike an error line, nothing says the server is still there, so a pool of
    servers takes ``host`` out of routing and a batch re-runs the row elsewhere.
    """

    def __init__(self, host: str, detail: str) -> None:
        self.host = host
        super().__init__(f"the connection to {host} broke mid-answer ({detail})")
