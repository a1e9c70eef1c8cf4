"""The request-body limit, enforced while the body arrives and answered in words.

Tornado's own ``max_body_size`` closes the connection with a bare ``400 Bad Request``; a
client deserves to be told what was wrong. :class:`LimitedApplication` puts a
:class:`BodyLimit` in front of every request: a ``Content-Length`` over the limit is
answered 413 before one byte of the body is read, a chunked body is counted as it comes
and answered 413 the moment it passes the limit, and either way the connection is closed
so the rest is never read. No handler runs, no JSON is parsed, no image decoded.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable

import tornado.web
from tornado import httputil

from .config import MAX_BODY_ENV


def _mib(n: int) -> str:
    return f"{n / 1024**2:.0f} MiB" if n >= 1024**2 else f"{n} bytes"


class BodyLimit(httputil.HTTPMessageDelegate):
    """Passes a request through to ``inner`` unless its body grows past ``limit`` bytes."""

    def __init__(
        self,
        inner: httputil.HTTPMessageDelegate,
        connection: httputil.HTTPConnection,
        limit: int,
    ) -> None:
        self._inner = inner
        self._connection = connection
        self._limit = limit
        self._received = 0
        self._refused = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        """Refuse a declared length over the limit before reading the body."""
        declared = headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > self._limit:
            self._refuse()
            return None
        return self._inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        """Count what arrives; refuse once past the limit (chunked bodies declare nothing)."""
        if self._refused:
            return None
        self._received += len(chunk)
        if self._received > self._limit:
            self._refuse()
            return None
        return self._inner.data_received(chunk)

    def finish(self) -> None:
        """The body is complete: the inner delegate runs the handler."""
        if not self._refused:
            self._inner.finish()

    def on_connection_close(self) -> None:
        """The client left."""
        if not self._refused:
            self._inner.on_connection_close()

    def _refuse(self) -> None:
        self._refused = True
        body = json.dumps(
            {
                "error": f"request body is larger than this server accepts "
                f"({_mib(self._limit)}); send smaller images or raise {MAX_BODY_ENV}"
            }
        ).encode()
        headers = httputil.HTTPHeaders(
            {"Content-Type": "application/json; charset=utf-8",
             "Content-Length": str(len(body)), "Connection": "close"}
        )  # fmt: skip
        self._connection.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 413, "Request Entity Too Large"), headers, body
        )
        self._connection.finish()  # closes the connection: the rest of the body is not read


class LimitedApplication(tornado.web.Application):
    """A tornado application whose requests pass through a :class:`BodyLimit` first."""

    max_body_bytes: int = 256 * 1024**2

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        """Wrap tornado's routing delegate in the limit."""
        inner = super().start_request(server_conn, request_conn)
        return BodyLimit(inner, request_conn, self.max_body_bytes)
