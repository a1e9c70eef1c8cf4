"""The composition root: the only module that names concrete adapters.

One ``Runtime`` per process holds the settings, the background loop, the pool of
servers (one HTTP gateway, gate and concurrency controller each; a single server
unless ``OLLAMA_NB_HOSTS`` names several), the metrics sinks, the telemetry
store, the image pipeline, the ``/api/show`` answers and the server manager, so
magics, widgets, batches, the Python API and the Jupyter server extension all
share one configuration. Nothing is created at import: the loop thread starts,
the client and the store are built, and Pillow is imported on first use.

``get_runtime()`` is called only where a user enters (the list is in
``ollama_nb/README.md``); everything past an entry point gets the runtime, or
just the ``Ports`` a use case needs, passed in, and nothing below this module
imports it back. The parts point one way (``tests/structure`` checks it)::

    api, vision, metrics_api, quickstart, notebook, widgets, batch, dask,
    jupyter_server_ext                                          (entry points)
        -> runtime                                              (composition root)
        -> ollama_process, embedded, serving, telemetry,
           infrastructure, settings                             (adapters)
        -> application -> domain
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .application.model_infos import ModelInfos
from .application.ports import Clock, GateStats, MetricsSink
from .application.tool_loop import ToolLoop
from .application.tools import ToolSet
from .application.use_cases import Ports, choose_model, complete
from .domain import (
    ChatResult,
    CircuitOpenError,
    GenerateRequest,
    ModelName,
    ServerUnavailableError,
)
from .infrastructure.clock import SystemClock
from .infrastructure.concurrency import ConcurrencyController
from .infrastructure.event_sinks import FanOut, JsonRequestLog, RecentEvents
from .infrastructure.gate import SlotGate
from .infrastructure.http_gateway import HttpOllamaGateway
from .infrastructure.loop_thread import LoopThread
from .infrastructure.pool import HostPool, PoolMember
from .infrastructure.private_files import private_secret
from .infrastructure.resilience import CircuitBreaker, RetryPolicy
from .infrastructure.response_cache import CACHE_DB_NAME, SqliteResponseCache
from .ollama_process.hardware import Hardware
from .ollama_process.manager import ServerManager
from .ollama_process.registry import RegistryClient
from .ollama_process.settings import ServerSettings
from .settings import Settings, load_settings, update_settings
from .telemetry.store import DB_NAME, Retention, TelemetryStore

if TYPE_CHECKING:
    from .infrastructure.image_pipeline import ImagePipeline

T = TypeVar("T")

#: Settings whose change needs a new HTTP client.
_CONNECTION_SETTINGS = frozenset(
    {
        "host",
        "hosts",
        "connect_timeout_s",
        "read_timeout_s",
        "retry_attempts",
        "retry_backoff_s",
        "retry_backoff_max_s",
        "breaker_threshold",
        "breaker_cooldown_s",
    }
)


#: The file in the data directory that holds the key checkpoint rows are sealed with.
CHECKPOINT_KEY_NAME = "checkpoint.key"


class Runtime:
    """Everything one process shares; ``get_runtime()`` gives the process-wide one.

    ``telemetry=False`` builds a runtime that keeps no metrics file and no
    response cache: for a process that must not write them, and for measuring
    what the store costs.
    ``server_settings``, ``hardware`` and ``environ`` shape the server manager
    (default: ``OLLAMA_NB_SERVER_*``, this machine, this process's environment);
    a notebook that wants to see what a start on another machine would do passes
    ``hardware`` to ``runtime.server.tune_report`` instead.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        telemetry: bool = True,
        server_settings: ServerSettings | None = None,
        hardware: Hardware | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._settings = settings or load_settings()
        self.clock: Clock = clock or SystemClock()
        self.loop = LoopThread()
        self.recent = RecentEvents()
        self._extra_sinks: list[MetricsSink] = []
        self._request_log: JsonRequestLog | None = None
        self._pool: HostPool | None = None
        # Gates outlive a pool rebuilt for new timeouts: what a server's controller
        # learned about its slots stays true while the URL does.
        self._gates: dict[str, SlotGate] = {}
        self._keep_metrics = telemetry
        self._store: TelemetryStore | None = None
        self._remove_store: Callable[[], None] = lambda: None
        self._images: ImagePipeline | None = None
        self._responses: SqliteResponseCache | None = None
        self._server: ServerManager | None = None
        self._server_args = (server_settings, hardware, environ)
        self._model_infos = ModelInfos()
        self._lock = threading.Lock()
        self._parts_lock = threading.Lock()

    # --- settings ----------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._settings

    def checkpoint_secret(self) -> bytes:
        """This user's key for sealing batch checkpoint rows (``data_dir/checkpoint.key``, 0600)."""
        return private_secret(self._settings.data_dir / CHECKPOINT_KEY_NAME)

    def tool_loop(self, tools: ToolSet, max_rounds: int | None = None) -> ToolLoop:
        """A tool loop bounded by the settings (``max_rounds`` given by a surface wins)."""
        settings = self._settings
        return ToolLoop(
            tools,
            max_rounds=settings.tool_max_rounds if max_rounds is None else max_rounds,
            max_calls=settings.tool_max_calls,
            max_argument_chars=settings.tool_max_argument_chars,
        )

    def configure(self, **changes: Any) -> Settings:
        """Change settings for everything in this process; validated before applied."""
        new = update_settings(self._settings, **changes)
        old, self._settings = self._settings, new
        if any(getattr(old, k) != getattr(new, k) for k in _CONNECTION_SETTINGS):
            self._drop_gateway()
        slots = ("parallel", "adaptive_concurrency", "max_concurrency", "vision_parallel")
        if any(getattr(old, k) != getattr(new, k) for k in slots):
            # Gates are retuned in place: requests in flight keep their slots and connections.
            for url, gate in list(self._gates.items()):  # the loop thread may add one
                gate.retune(
                    new.known_parallel if url == new.host else None,
                    adaptive=new.adaptive_concurrency,
                    ceiling=new.max_concurrency,
                    vision_limit=new.vision_parallel,
                )
        if (old.request_log, old.data_dir) != (new.request_log, new.data_dir):
            self._close_request_log()
        if self._store is not None and _retention(old) != _retention(new):
            self._store.retention = _retention(new)
        if old.data_dir != new.data_dir:
            self._close_store()  # the next request opens the store in the new folder
            self._close_responses()
        if self._responses is not None:
            self._responses.max_bytes = _cache_bytes(new)
        if self._images is not None:
            self._images.reconfigure(new.vision)
        return new

    def _follow_slots(self, parallel: int) -> None:
        """The server manager saw the server run with ``parallel`` slots: size the gate to it."""
        self.configure(parallel=parallel)

    # --- adapters ------------------------------------------------------------------

    @property
    def pool(self) -> HostPool:
        """Every server in use, each with its own gateway, gate and controller."""
        with self._lock:
            if self._pool is None:
                s = self._settings
                self._pool = HostPool(
                    self.clock,
                    [self._member(url) for url in s.host_urls],
                    down_s=s.breaker_cooldown_s,
                )
            return self._pool

    def _member(self, url: str) -> PoolMember:
        s = self._settings
        gate = self._gates.get(url)
        if gate is None:
            # The manager's or the user's slot count applies to the one local server.
            known = s.known_parallel if url == s.host else None
            gate = self._gates[url] = SlotGate(
                self.clock,
                limit=known or 1,
                vision_limit=s.vision_parallel,
                controller=ConcurrencyController(
                    self.clock,
                    known=known,
                    ceiling=s.max_concurrency,
                    adaptive=s.adaptive_concurrency,
                ),
            )
        gateway = HttpOllamaGateway(
            url,
            clock=self.clock,
            connect_timeout_s=s.connect_timeout_s,
            read_timeout_s=s.read_timeout_s,
            retry=RetryPolicy(s.retry_attempts, s.retry_backoff_s, s.retry_backoff_max_s),
            breaker=CircuitBreaker(
                url, self.clock, threshold=s.breaker_threshold, cooldown_s=s.breaker_cooldown_s
            ),
            # The gate in front of this server now: a Dask worker replaces it with its
            # brokered one, whose 503s must reach the cluster's controller.
            on_busy=lambda: self._gates[url].server_busy(),
        )
        return PoolMember(gateway, gate)

    @property
    def gateway(self) -> HttpOllamaGateway:
        """The first server's gateway: catalogue calls (models, pull, show) go there."""
        gateway = self.pool.primary.gateway
        assert isinstance(gateway, HttpOllamaGateway)
        return gateway

    @property
    def gate(self) -> SlotGate:
        """The first server's gate (the only one without a pool)."""
        return self.pool.primary.gate

    @gate.setter
    def gate(self, gate: SlotGate) -> None:
        """Put another gate in front of the first server."""
        self.replace_gate(self.pool.primary.host, gate)

    def replace_gate(self, host: str, gate: SlotGate) -> bool:
        """Put another gate in front of ``host`` (a Dask worker's cluster-wide one); False if unknown."""
        member = self.pool.member(host)
        if member is None:
            return False
        self._gates[host] = member.gate = gate
        return True

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
    def telemetry(self) -> TelemetryStore:
        """The metrics store in ``data_dir``, added to the sinks when first asked for."""
        with self._parts_lock:
            if self._store is None:
                store = TelemetryStore(
                    self._settings.data_dir / DB_NAME,
                    history=lambda: self._settings.history,
                    retention=_retention(self._settings),
                    server_profile=self.server_profile,
                )
                self._remove_store = self.add_sink(store)
                self._store = store
            return self._store

    @property
    def server(self) -> ServerManager:
        """The manager of the local Ollama server (its ``OLLAMA_NB_SERVER_*`` settings read now)."""
        with self._parts_lock:
            if self._server is None:
                server_settings, hardware, environ = self._server_args
                self._server = ServerManager(
                    lambda: self._settings,
                    follow_slots=self._follow_slots,
                    load=self._load,
                    server_settings=server_settings,
                    hardware=hardware,
                    environ=environ,
                )
            return self._server

    def server_profile(self) -> str | None:
        """The running server's tuning profile for each metrics row; never fails a write."""
        try:
            return self.server.active_profile()
        except Exception:  # the server manager's trouble must not cost us the events
            logging.getLogger(__name__).debug("active_profile() failed", exc_info=True)
            return None

    @property
    def images(self) -> ImagePipeline:
        """The image pipeline built from the ``image_*`` settings, with this runtime's clock."""
        with self._parts_lock:
            if self._images is None:
                # Pillow loads here, on the first image, not when ollama_nb is imported.
                from .infrastructure.image_pipeline import ImagePipeline

                self._images = ImagePipeline(self._settings.vision, clock=self.clock)
            return self._images

    @property
    def responses(self) -> SqliteResponseCache:
        """The response cache in ``data_dir`` (its file is opened on first use)."""
        with self._parts_lock:
            if self._responses is None:
                self._responses = SqliteResponseCache(
                    self._settings.data_dir / CACHE_DB_NAME, max_bytes=_cache_bytes(self._settings)
                )
            return self._responses

    @property
    def registry(self) -> RegistryClient:
        """Ollama's model registry, for what a model weighs before it is pulled."""
        return RegistryClient(
            self._settings.registry_url, timeout_s=self._settings.connect_timeout_s
        )

    @property
    def ports(self) -> Ports:
        if self._store is None and self._keep_metrics:
            self.telemetry  # noqa: B018 - building it attaches it as a sink
        return Ports(
            gateway=self.gateway,
            gate=self.pool,
            metrics=self._metrics(),
            clock=self.clock,
            project=self._settings.project,
            keep_history=self._settings.history,
            model_infos=self._model_infos,
            # A runtime that keeps no files (telemetry=False: benchmarks, measurements)
            # keeps no answers either: a served answer would flatter what it measures.
            cache=self.responses if self._settings.response_cache and self._keep_metrics else None,
        )

    def gate_stats(self) -> GateStats:
        return self.pool.stats()

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

    def choose_model(self, capability: str = "completion") -> ModelName:
        """The model for a request that names none, with no default set: asked of the server.

        ``request_builder.resolve_model`` falls back to this (passed in as ``discover``):
        the embedded server's default chat model, else the only installed model that can
        do ``capability``, else a one-line error listing the installed models.
        """
        # Imported here, not at the top: llama.cpp's package pulls in the HTTP server
        # machinery, which `%load_ext ollama_nb` should not pay for.
        from .embedded.models import DEFAULT_MODEL

        return self.run(
            lambda ports: choose_model(ports, capability, embedded_default=DEFAULT_MODEL)
        )

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
        started = self.server.ensure_running()
        if started:
            self.gateway.breaker.reset()
        return started

    def iterate(self, work: Callable[[Ports], AsyncIterator[T]]) -> Iterator[T]:
        return self.loop.iterate(work(self.ports))

    def _load(self, request: GenerateRequest) -> ChatResult:
        """One non-streamed request (the server manager's warm-up), recorded like any other."""
        return self.run(lambda ports: complete(ports, request, stream=False))

    # --- shutdown -----------------------------------------------------------------

    def _drop_gateway(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        for member in pool.members if pool is not None else ():
            assert isinstance(member.gateway, HttpOllamaGateway)
            try:
                self.loop.run(member.gateway.aclose())
            except Exception:  # a broken old client must not block a reconfiguration
                continue

    def _close_request_log(self) -> None:
        if self._request_log is not None:
            self._request_log.close()
            self._request_log = None

    def _close_store(self) -> None:
        with self._parts_lock:
            store, self._store = self._store, None
            remove, self._remove_store = self._remove_store, lambda: None
        remove()
        if store is not None:
            store.close()

    def _close_responses(self) -> None:
        with self._parts_lock:
            responses, self._responses = self._responses, None
        if responses is not None:
            responses.close()

    def close(self) -> None:
        self._drop_gateway()
        self._close_request_log()
        self._close_store()
        self._close_responses()
        self.loop.stop()


def _retention(settings: Settings) -> Retention:
    max_mb = settings.metrics_max_mb
    return Retention(
        max_age_days=settings.metrics_retention_days,
        max_bytes=None if max_mb is None else int(max_mb * 1024 * 1024),
    )


def _cache_bytes(settings: Settings) -> int:
    return int(settings.response_cache_mb * 1024 * 1024)


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
