"""The server: a tornado app on its own event loop, in-process or as a CLI.

In-process it runs in a daemon thread (its own loop, so it never touches the kernel's or
pytest's loop); ``python -m ollama_nb.embedded serve`` runs it in the main thread until
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Self

import tornado.web

from ..infrastructure.host import format_host
from .accept import BackoffHTTPServer
from .api import NotFoundHandler, Route
from .base import json_log
from .config import ServerConfig
from .engine import Engine
from .limits import LimitedApplication
from .routes import api_routes
from .state import ServerState

log = logging.getLogger("ollama_nb.serving")
_NO_CAP = 1 << 62


def make_app(routes: list[Route], state: ServerState) -> tornado.web.Application:
    """The tornado application for ``routes``; any other path is gin's 404."""
    app = LimitedApplication(
        routes,  # type: ignore[arg-type]
        default_handler_class=NotFoundHandler,
        default_handler_args={"state": state},
        log_function=json_log,
    )
    app.max_body_bytes = state.config.max_body_bytes
    return app


def bind_sockets(host: str | None, port: int) -> list[socket.socket]:
    """Listening sockets for ``host`` (every interface when ``None``), one per family.

    Like ``tornado.netutil.bind_sockets`` but closes what it opened when a bind fails, so
    a port clash is an exception and not also a leaked socket.
    """
    opened: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(
            host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
        for family, kind, proto, _, address in infos:
            if any(s.family == family for s in opened):
                continue
            sock = socket.socket(family, kind, proto)
            opened.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(opened) > 1:  # same free port on IPv4 and IPv6
                address = (address[0], opened[0].getsockname()[1], *address[2:])
            sock.setblocking(False)
            sock.bind(address)
            sock.listen(128)
    except BaseException:
        for sock in opened:
            sock.close()
        raise
    return opened


class Server:
    """Ollama's documented REST API, answered by ``engines`` (each model card names its own).

    Use ``with Server(config, engines) as server:`` (or :meth:`start`/:meth:`stop`) to run it
    on a background thread, or ``await server.serve_forever()`` on a loop you own.
    """

    def __init__(self, config: ServerConfig, engines: Mapping[str, Engine]) -> None:
        self.config = config
        self._engines = dict(engines)
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._state: ServerState | None = None

    @property
    def state(self) -> ServerState:
        """The live state while serving, for observers in this process (slots, models)."""
        if self._state is None:
            raise RuntimeError("the server is not listening yet; call start()")
        return self._state

    @property
    def port(self) -> int:
        """The bound port (known once listening)."""
        if self._port is None:
            raise RuntimeError("the server is not listening yet; call start()")
        return self._port

    @property
    def host(self) -> str:
        """``host:port`` as ``OLLAMA_HOST`` expects it, e.g. ``127.0.0.1:54321``."""
        bind = self.config.host
        connect = "127.0.0.1" if bind in ("", "0.0.0.0") else "::1" if bind == "::" else bind
        return f"{format_host(connect)}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL for clients, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}"

    def build_state(self) -> ServerState:
        """The state every handler shares, made afresh each time the server starts."""
        return ServerState(self.config, self._engines)

    def routes(self, state: ServerState) -> list[Route]:
        """The route table: Ollama's endpoints and nothing else."""
        return api_routes(state)

    async def serve_forever(self, *, ready: Callable[[Self], None] | None = None) -> None:
        """Bind, call ``ready``, and serve until :meth:`request_stop`; then close cleanly."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        state = self._state = self.build_state()
        app = make_app(self.routes(state), state)
        # the application's BodyLimit answers 413 in words; tornado's own cap stays out of it
        server = BackoffHTTPServer(app, max_body_size=_NO_CAP)
        address = self.config.host if self.config.host not in ("", "0.0.0.0") else None
        sockets = bind_sockets(address, self.config.port)
        server.add_sockets(sockets)
        self._port = sockets[0].getsockname()[1]
        log.info(
            "Listening on %s:%d (version %s)",
            format_host(self.config.host), self._port, self.config.version,
        )  # fmt: skip
        if ready is not None:
            ready(self)
        try:
            await self._stop_event.wait()
        finally:
            server.stop()
            try:
                await asyncio.wait_for(server.close_all_connections(), timeout=5.0)
            except TimeoutError:
                log.warning("some connections did not close within 5s")
            await state.unload_all()

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to return; safe from any thread or signal handler."""
        loop, event = self._loop, self._stop_event
        if loop is None or event is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(event.set)

    def start(self, timeout: float = 10.0) -> Self:
        """Serve on a daemon thread with its own event loop; return once listening."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        listening = threading.Event()

        def run() -> None:
            try:
                asyncio.run(self.serve_forever(ready=lambda _: listening.set()))
            except BaseException as exc:  # reported to the thread that called start()
                self._error = exc
                listening.set()

        self._thread = threading.Thread(target=run, name="ollama-nb-server", daemon=True)
        self._thread.start()
        if not listening.wait(timeout):
            raise TimeoutError(f"the server did not start within {timeout}s")
        if self._error is not None:
            self._thread = None
            raise RuntimeError(f"the server failed to start: {self._error}") from (self._error)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background server and wait for its thread."""
        thread = self._thread
        if thread is None:
            return
        self.request_stop()
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
