"""Accepting connections without spinning when the process runs out of file descriptors.

Tornado's accept loop lets ``accept()`` errors other than "try again" escape to the IO
loop, which logs a traceback and calls it again at once, because the listening socket is
still readable: out of descriptors (EMFILE), that is a busy loop writing a traceback per
turn (123 MB of log in 15 s). Here such an error pauses accepting on that socket, for 5 ms
doubling to one second while it lasts, and is logged at most once every ten seconds with
the number of refusals since; the first accepted connection ends the back-off.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import Callable

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

log = logging.getLogger("ollama_nb.serving")

_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_FIRST_PAUSE_S = 0.005
_MAX_PAUSE_S = 1.0
_LOG_EVERY_S = 10.0
_ACCEPTS_PER_TURN = 128

Clock = Callable[[], float]


class AcceptLoop:
    """Accepts on one listening socket; hands each connection to ``on_connection``."""

    def __init__(
        self,
        sock: socket.socket,
        on_connection: Callable[[socket.socket, object], None],
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._sock = sock
        self._on_connection = on_connection
        self._clock = clock
        self._loop = IOLoop.current()
        self._pause = 0.0
        self._refused = 0
        self._logged_at: float | None = None
        self._watching = False
        self._closed = False
        self._watch()

    def _watch(self) -> None:
        if not self._closed and not self._watching:
            self._loop.add_handler(self._sock, self._ready, IOLoop.READ)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_handler(self._sock)
            self._watching = False

    def close(self) -> None:
        """Stop accepting (the caller closes the socket)."""
        self._closed = True
        self._unwatch()

    def _ready(self, fd: object, events: int) -> None:
        for _ in range(_ACCEPTS_PER_TURN):
            if self._closed:
                return
            try:
                conn, address = self._sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                self._back_off(exc)
                return
            self._pause = 0.0
            self._on_connection(conn, address)

    def _back_off(self, exc: OSError) -> None:
        """Stop watching for a while; say so now and then, not on every refusal."""
        self._refused += 1
        self._pause = min(_MAX_PAUSE_S, max(_FIRST_PAUSE_S, self._pause * 2))
        now = self._clock()
        if self._logged_at is None or now - self._logged_at >= _LOG_EVERY_S:
            log.warning(
                "cannot accept connections: %s; pausing accept (%d refusals since the "
                "last message)", exc.strerror or exc, self._refused,
            )  # fmt: skip
            self._logged_at = now
            self._refused = 0
        self._unwatch()
        self._loop.call_later(self._pause, self._watch)


class BackoffHTTPServer(HTTPServer):
    """Tornado's HTTP server with :class:`AcceptLoop` in place of its accept handler."""

    def add_sockets(self, sockets: list[socket.socket]) -> None:  # type: ignore[override]
        """Register each socket the way ``TCPServer.add_sockets`` does, with our loop."""
        for sock in sockets:
            fd = sock.fileno()
            self._sockets[fd] = sock
            accept = AcceptLoop(sock, self._handle_connection)
            self._handlers[fd] = accept.close
