"""The stand-in's handlers: the server's own, plus the request log and fault injection.

Each ``/api/*`` handler of :mod:`ollama_nb.serving.api` gets a stand-in twin that
overrides its extension steps: :meth:`~StandinHooks.intercept` logs the request and applies
a fault that ends it before it starts (``http_500``, ``http_503``, and any fault on a
non-streaming endpoint), :meth:`~StandinHooks.interrupt` applies the stream faults after
``after`` items, :meth:`~StandinHooks.load_model` the ``slow_load`` fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import cast

from ...serving.api import ApiHandler, Route
from ...serving.base import BaseHandler, retrieve_outcome
from ...serving.catalogue import ModelCard
from ...serving.routes import api_routes
from ...serving.scheduler import BUSY_MESSAGE, Loaded
from ...serving.wire import ApiError
from .faults import (
    MIDSTREAM_ERROR,
    RUNNER_TERMINATED,
    Fault,
    FaultPlan,
    FaultSpecError,
    plan_from_headers,
)
from .state import StandinState

_STREAM_FAULTS = frozenset({Fault.ERROR_MIDSTREAM, Fault.DROP, Fault.STALL})
_LOGGED_BODY_CHARS = 2000


class StandinHooks(ApiHandler):
    """Mixed in front of every serving ``ApiHandler`` by :func:`standin_api_routes`."""

    state: StandinState
    fault: FaultPlan | None = None

    async def intercept(self) -> bool:
        """Pick this request's fault (header first, then armed), log it, apply it if final."""
        try:
            self.fault = plan_from_headers(self.request.headers)
        except FaultSpecError as exc:
            self.send_error_json(ApiError(400, str(exc)))
            return True
        if self.fault is None:
            self.fault = self.state.faults.take(self.request.path)
        logged: object = None
        if self.request.method in ("POST", "DELETE"):
            logged = (
                self.body
                if self.body_error is None
                else self.request.body[:_LOGGED_BODY_CHARS].decode("utf-8", "replace")
            )
        self.state.record(self.request.method or "", self.request.path,
                          {k.lower(): v for k, v in self.request.headers.items()}, logged,
                          self.fault)  # fmt: skip
        return await self._apply_request_fault()

    async def _apply_request_fault(self) -> bool:
        """Apply a fault that ends the request now; ``True`` when the response is done."""
        plan = self.fault
        if plan is None:
            return False
        if plan.fault is Fault.HTTP_500:
            self.send_error_json(ApiError(500, RUNNER_TERMINATED))
            return True
        if plan.fault is Fault.HTTP_503:
            self.send_error_json(ApiError(503, BUSY_MESSAGE))
            return True
        if self.streams or plan.fault not in _STREAM_FAULTS:
            return False
        if plan.fault is Fault.ERROR_MIDSTREAM:
            self.send_error_json(ApiError(500, MIDSTREAM_ERROR))
        elif plan.fault is Fault.DROP:
            self.drop_connection()
        else:
            await self.guarded(self.hang())
            if not self.client_gone:
                self.finish()
        return True

    async def interrupt(self, emitted: int, stream: bool, *, final: bool = False) -> bool:
        """Apply a stream fault once ``after`` items went out; ``True`` when the response ended.

        ``final`` means the response would end now, so a fault whose ``after`` was not reached
        yet still fires (a fault is armed to be seen).
        """
        plan = self.fault
        if plan is None or plan.fault not in _STREAM_FAULTS:
            return False
        if emitted < plan.after and not final:
            return False
        self.fault = None
        if plan.fault is Fault.ERROR_MIDSTREAM:
            if stream:
                await self.start_stream()
                # an NDJSON line natively, a server-sent event on the OpenAI routes
                await self.send_line(self.stream_error(ApiError(500, MIDSTREAM_ERROR)))
                self.finish()
            else:
                self.send_error_json(ApiError(500, MIDSTREAM_ERROR))
        elif plan.fault is Fault.DROP:
            self.drop_connection()
        else:
            await self.hang()
        return True

    async def load_model(
        self, card: ModelCard, options: Mapping[str, object], keep_alive_s: float
    ) -> Loaded:
        """The ``slow_load`` fault: a cold load (unloading an idle copy) that much slower."""
        extra = self._extra_load_seconds()
        if extra is None:
            return await super().load_model(card, options, keep_alive_s)
        await self.state.unload_idle(card.name)
        entry = await super().load_model(card, options, keep_alive_s)
        try:
            await asyncio.sleep(extra)
        except BaseException:
            await self.state.release_model(entry, keep_alive_s)
            raise
        return entry

    def _extra_load_seconds(self) -> float | None:
        if self.fault is None or self.fault.fault is not Fault.SLOW_LOAD:
            return None
        if self.fault.seconds is not None:
            return self.fault.seconds
        return self.state.config.slow_load_seconds

    def pull_pause(self, lines: int) -> float:
        """``pull_seconds`` spread over the pull's progress lines."""
        return self.state.config.pull_seconds / lines

    def drop_connection(self) -> None:
        """Close the TCP connection without finishing the response (the ``drop`` fault)."""
        if not self._finished:
            self.flush().add_done_callback(retrieve_outcome)  # the items sent so far do arrive
        self._gone = True
        if self.request.connection is not None:
            self.request.connection.close()  # type: ignore[attr-defined]
        self.finish()

    async def hang(self) -> None:
        """Send headers, then wait until the client leaves (the ``stall`` fault)."""
        if not self._streaming:
            self._streaming = True
            self.set_header("Content-Type", "application/x-ndjson")
        await self.flush()
        await asyncio.Event().wait()


_TWINS: dict[type[BaseHandler], type[BaseHandler]] = {}


def _with_hooks(handler: type[BaseHandler]) -> type[BaseHandler]:
    """The stand-in twin of a serving handler (``/`` and 404 have no steps to override)."""
    if not issubclass(handler, ApiHandler):
        return handler
    if handler not in _TWINS:
        _TWINS[handler] = cast(
            type[BaseHandler], type(handler.__name__, (StandinHooks, handler), {})
        )
    return _TWINS[handler]


def standin_api_routes(state: StandinState) -> list[Route]:
    """Ollama's routes, served by the stand-in twins of the server's handlers."""
    return [(path, _with_hooks(handler), kwargs) for path, handler, kwargs in api_routes(state)]
