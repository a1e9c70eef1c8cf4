"""The composition root: the only module that names concrete adapters.

One ``Runtime`` per process holds the settings, the background loop, the HTTP
gateway (one connection pool), the concurrency gate and the metrics sinks, so
magics, widgets, batches, the Python API and the Jupyter server extension all
share one configuration. Nothing is created at import: the loop thread starts
and the client is built on first use.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from .application.ports import Clock, GateStats, MetricsSink
from .application.use_cases import Ports
from .domain import CircuitOpenError, ServerUnavailableError
from .infrastructure.clock import SystemClock
from .infrastructure.event_sinks import FanOut, JsonRequestLog, RecentEvents
from .infrastructure.gate import SlotGate
from .infrastructure.http_gateway import HttpOllamaGateway
from .infrastructure.loop_thread import LoopThread
from .infrastructure.resilience import CircuitBreaker, RetryPolicy
from .settings import Settings, load_settings, update_settings

T = TypeVar("T")

#: Settings whose change needs a new HTTP client.
_CONNECTION_SETTINGS = frozenset(
    {
        "host",
        "connect_timeout_s",
        "read_timeout_s",
        "retry_attempts",
        "retry_backoff_s",
        "retry_backoff_max_s",
        "breaker_threshold",
        "breaker_cooldown_s",
    }
)


class Runtime:
    """``telemetry=False`` builds a runtime that keeps no metrics file: for a process
    that must not write one, and for measuring what the store costs."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        telemetry: bool = True,
    ) -> None:
        self._settings = settings or load_settings()
        self.clock: Clock = clock or SystemClock()
        self.loop = LoopThread()
        self.recent = RecentEvents()
        self._extra_sinks: list[MetricsSink] = []
        self._request_log: JsonRequestLog | None = None
        self._gateway: HttpOllamaGateway | None = None
        self.gate = SlotGate(
            self.clock,
            limit=self._settings.effective_parallel,
            vision_limit=self._settings.vision_parallel,
        )
        self._telemetry = telemetry
        self._telemetry_attached = not telemetry
        self._confirmed_capabilities: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    # --- settings ----------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._settings

    def configure(self, **changes: Any) -> Settings:
        """Change settings for everything in this process; validated before applied."""
        new = update_settings(self._settings, **changes)
        old, self._settings = self._settings, new
        if any(getattr(old, k) != getattr(new, k) for k in _CONNECTION_SETTINGS):
            self._drop_gateway()
        self.gate.resize(new.effective_parallel, new.vision_parallel)
        if (old.request_log, old.data_dir) != (new.request_log, new.data_dir):
            self._close_request_log()
        if old.data_dir != new.data_dir or old.history != new.history:
            self._telemetry_attached = not self._telemetry
        return new

    # --- adapters ------------------------------------------------------------------

    @property
    def gateway(self) -> HttpOllamaGateway:
        with self._lock:
            if self._gateway is None:
                s = self._settings
                self._gateway = HttpOllamaGateway(
                    s.host,
                    clock=self.clock,
                    connect_timeout_s=s.connect_timeout_s,
                    read_timeout_s=s.read_timeout_s,
                    retry=RetryPolicy(s.retry_attempts, s.retry_backoff_s, s.retry_backoff_max_s),
                    breaker=CircuitBreaker(
                        s.host,
                        self.clock,
                        threshold=s.breaker_threshold,
                        cooldown_s=s.breaker_cooldown_s,
                    ),
                )
            return self._gateway

    def add_sink(self, sink: MetricsSink) -> Callable[[], None]:
        """Send every request event to ``sink`` as well; returns the remover."""
        self._extra_sinks.append(sink)

        def remove() -> None:
            if sink in self._extra_sinks:
                self._extra_sinks.remove(sink)

        return remove

    def _metrics(self) -> MetricsSink:
        sinks: list[MetricsSink] = [self.recent, *self._extra_sinks]
        if self._settings.request_log:
            if self._request_log is None:
                self._request_log = JsonRequestLog(self._settings.data_dir / "requests.log")
            sinks.append(self._request_log)
        return FanOut(sinks)

    @property
    def ports(self) -> Ports:
        if not self._telemetry_attached:
            from . import telemetry

            telemetry.attach(self)  # idempotent; follows a data_dir change
            self._telemetry_attached = True
        return Ports(
            gateway=self.gateway,
            gate=self.gate,
            metrics=self._metrics(),
            clock=self.clock,
            project=self._settings.project,
            keep_history=self._settings.history,
            confirmed_capabilities=self._confirmed_capabilities,
        )

    def gate_stats(self) -> GateStats:
        return self.gate.stats()

    # --- running work on the background loop ------------------------------------

    def run(self, work: Callable[[Ports], Coroutine[Any, Any, T]]) -> T:
        """Run a use case from synchronous code (magics, widgets callbacks, the sync API).

        If nothing answers at a local host and auto-start is on, the server
        manager starts ``ollama serve`` and the work is tried once more.
        """
        try:
            return self.loop.run(work(self.ports))
        except ServerUnavailableError as exc:
            if isinstance(exc, CircuitOpenError) or not self._auto_started():
                raise
        return self.loop.run(work(self.ports))

    async def arun(self, work: Callable[[Ports], Coroutine[Any, Any, T]]) -> T:
        """Run a use case from an async cell without touching the kernel's loop."""
        try:
            return await self.loop.arun(work(self.ports))
        except ServerUnavailableError as exc:
            if isinstance(exc, CircuitOpenError) or not await asyncio.to_thread(self._auto_started):
                raise
        return await self.loop.arun(work(self.ports))

    def _auto_started(self) -> bool:
        """Start the local server when allowed; True if one answers now."""
        if self.loop.in_loop_thread():
            return False  # starting blocks for seconds: never on the shared loop
        from .server import ensure_running

        started = ensure_running(self)
        if started:
            self.gateway.breaker.reset()
        return started

    def iterate(self, work: Callable[[Ports], AsyncIterator[T]]) -> Iterator[T]:
        return self.loop.iterate(work(self.ports))

    # --- shutdown -----------------------------------------------------------------

    def _drop_gateway(self) -> None:
        with self._lock:
            gateway, self._gateway = self._gateway, None
        if gateway is not None:
            try:
                self.loop.run(gateway.aclose())
            except Exception:  # a broken old client must not block a reconfiguration
                return

    def _close_request_log(self) -> None:
        if self._request_log is not None:
            self._request_log.close()
            self._request_log = None

    def close(self) -> None:
        self._drop_gateway()
        self._close_request_log()
        self.loop.stop()


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide runtime, created on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime()
            atexit.register(_runtime.close)
        return _runtime


def set_runtime(runtime: Runtime | None) -> Runtime | None:
    """Replace the process-wide runtime (tests, or a host change from a fresh config)."""
    global _runtime
    with _runtime_lock:
        previous, _runtime = _runtime, runtime
    return previous
