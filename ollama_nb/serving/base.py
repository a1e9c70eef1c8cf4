"""The request-handler base every endpoint shares.

It enforces Ollama's Origin and Host-header rules (answering CORS preflights), writes errors in Ollama's shape, and runs a
handler's work in a task that is cancelled the moment the client disconnects, so a client
that walks away frees its slot at once instead of at the next token.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Mapping
from http import HTTPStatus
from typing import Any

import tornado.web
from tornado.iostream import StreamClosedError

from ..infrastructure.host import host_header_allowed, is_loopback
from .origins import ALLOW_HEADERS, ALLOW_METHODS, MAX_AGE_SECONDS, same_origin
from .state import ServerState
from .wire import ApiError, error_body

log = logging.getLogger("ollama_nb.serving")


class BaseHandler(tornado.web.RequestHandler):
    """Host check, Ollama-shaped errors and disconnect-aware execution."""

    state: ServerState

    def initialize(self, state: ServerState) -> None:
        """Tornado passes the shared state given in the route table."""
        self.state = state
        self._inner: asyncio.Future[None] | None = None
        self._gone = False
        self._streaming = False
        self._flush_scheduled = False
        self._last_flush: asyncio.Future[None] | None = None
        self.refused = False

    def set_default_headers(self) -> None:
        """No tornado ``Server`` header; the real server does not send one either."""
        self.clear_header("Server")

    async def prepare(self) -> None:
        """Ollama's order: the Origin check (CORS), then the Host check, then preflights.

        Each of them answers the request itself and sets :attr:`refused`, so the handler
        does nothing more; no body is parsed and no model is touched.
        """
        headers = self.request.headers
        host = headers.get("Host", "")
        origin = headers.get("Origin", "")
        if origin and not same_origin(origin, host):
            if not self.state.origins.allows(origin):
                self._refuse(
                    403,
                    f"origin {origin} is not allowed to call this server; "
                    "add it to OLLAMA_ORIGINS (comma-separated) if it should be",
                )
                return
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Vary", "Origin")
            if self.request.method == "OPTIONS":
                self.set_header("Access-Control-Allow-Methods", ALLOW_METHODS)
                self.set_header("Access-Control-Allow-Headers", ALLOW_HEADERS)
                self.set_header("Access-Control-Max-Age", str(MAX_AGE_SECONDS))
                self._refuse(204)
                return
        if is_loopback(self.state.config.host) and not host_header_allowed(host):
            self._refuse(403)
            return
        if self.request.method == "OPTIONS":
            self._refuse(204)

    def _refuse(self, status: int, message: str = "") -> None:
        """Answer now, before any work (an empty body unless there is something to say)."""
        self.refused = True
        if message:
            self.send_error_json(ApiError(status, message))
        else:
            self.set_status(status)
            self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Tornado-raised errors (405, 500) as gin would phrase them."""
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        try:
            phrase = HTTPStatus(status_code).phrase.lower()
        except ValueError:
            phrase = "error"
        self.finish(f"{status_code} {phrase}")

    def send_json(self, obj: Mapping[str, object] | list[object], status: int = 200) -> None:
        """A complete ``application/json`` response."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(obj))

    def error_payload(self, error: ApiError) -> bytes:
        """The body of an error: Ollama's ``{"error": ...}`` (the OpenAI routes differ)."""
        return error_body(error.message)

    def stream_error(self, error: ApiError) -> bytes:
        """An error after streaming began: a last NDJSON line."""
        return self.error_payload(error) + b"\n"

    def send_error_json(self, error: ApiError) -> None:
        """The error's body with its status."""
        self.set_status(error.status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(self.error_payload(error))

    @property
    def client_gone(self) -> bool:
        """The client closed its connection."""
        return self._gone

    def on_connection_close(self) -> None:
        """Cancel the running work so slots and queue places are freed immediately."""
        self._gone = True
        if self._inner is not None:
            self._inner.cancel()
        super().on_connection_close()

    async def guarded(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work``; an ``ApiError`` becomes a JSON error, a disconnect ends it quietly."""
        task = asyncio.ensure_future(work)
        self._inner = task
        if self._gone:
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if not self._gone:
                raise
        except StreamClosedError:
            self._gone = True
        except ApiError as exc:
            self._fail(exc)
        except Exception as exc:  # an engine failure reaches the client as Ollama reports it
            log.exception("request failed")
            self._fail(ApiError(500, str(exc) or type(exc).__name__))
        finally:
            self._inner = None

    def _fail(self, error: ApiError) -> None:
        """Before streaming: a status and JSON body; after: a last NDJSON error line."""
        if self._streaming:
            self.write(self.stream_error(error))
            self.finish()
        else:
            self.send_error_json(error)

    async def start_stream(self, content_type: str = "application/x-ndjson") -> None:
        """Send a 200 and headers now; later errors can only be NDJSON ``error`` lines."""
        if not self._streaming:
            self._streaming = True
            self.set_header("Content-Type", content_type)
            await self.flush()

    async def send_line(self, data: bytes) -> None:
        """Queue one streamed line; every line queued in one loop step leaves in one write.

        An engine that fell behind its pace (a busy loop, many slots) hands over several
        due tokens without suspending; flushing once, when the handler next waits, sends
        them as one chunk and one syscall instead of one each, so a busy server does not
        fall further behind. A client that has not taken the previous write holds the
        stream back here (``StreamClosedError`` if it left).
        """
        pending = self._last_flush
        if pending is not None and not pending.done():
            await pending
        self.write(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_queued)

    def _flush_queued(self) -> None:
        self._flush_scheduled = False
        if self._finished or self._gone:  # finish() already sent what was queued
            return
        flushed = self.flush()
        flushed.add_done_callback(retrieve_outcome)
        self._last_flush = flushed


def retrieve_outcome(future: asyncio.Future[None]) -> None:
    """Mark a flush's outcome as seen: a client that left is handled by ``guarded``."""
    if not future.cancelled():
        future.exception()


def json_log(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log, in one line per request like Ollama's GIN lines."""
    request = handler.request
    log.info(
        "%d | %8.2fms | %15s | %-6s %s",
        handler.get_status(),
        1000.0 * request.request_time(),
        request.remote_ip,
        request.method,
        request.uri,
    )
