"""Metrics sinks that ship with the core: a JSON request log and a live feed.

Both take an event in microseconds on the caller's path; the request log hands
the line to a logging queue whose listener thread does the file I/O.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

from ..application.ports import MetricsSink
from ..domain import RequestEvent


def event_log_record(event: RequestEvent) -> dict[str, object]:
    """The request-log line: identifiers and figures, never prompts, answers or images."""
    t = event.timings
    return {
        "ts": round(event.started_at, 3),
        "request_id": event.request_id,
        "kind": event.kind,
        "model": event.model,
        "host": event.host,
        "status": event.status,
        "error_type": event.error_type,
        "latency_s": None if t.latency_s is None else round(t.latency_s, 4),
        "ttft_s": None if t.ttft_s is None else round(t.ttft_s, 4),
        "load_s": round(t.load_s, 4),
        "prompt_tokens": t.prompt_eval_count,
        "eval_tokens": t.eval_count,
        "decode_tps": None if t.decode_tps is None else round(t.decode_tps, 2),
        "queue_wait_s": round(t.queue_wait_s, 4),
        "retries": t.retries,
        "done_reason": event.done_reason,
        "images": event.image_count,
        "project": event.project,
    }


class JsonRequestLog:
    """One JSON line per request in a rotating file (``requests.log`` in the data dir)."""

    def __init__(self, path: Path, *, max_bytes: int = 2_000_000, backups: int = 3) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._backups = backups
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._logger = logging.getLogger(f"ollama_nb.requests.{id(self)}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self._listener: logging.handlers.QueueListener | None = None
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                self.path, maxBytes=self._max_bytes, backupCount=self._backups, encoding="utf-8"
            )
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._listener = logging.handlers.QueueListener(self._queue, handler)
            self._listener.start()
            self._logger.addHandler(logging.handlers.QueueHandler(self._queue))

    def record(self, event: RequestEvent) -> None:
        if self._listener is None:
            self._start()
        self._logger.info(json.dumps(event_log_record(event), separators=(",", ":")))

    def close(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._listener.stop()
                for handler in self._listener.handlers:
                    handler.close()
                self._listener = None
            for handler in list(self._logger.handlers):
                self._logger.removeHandler(handler)


class RecentEvents:
    """The last events in memory, and callbacks for live views (dashboard, status bar)."""

    def __init__(self, maxlen: int = 1000) -> None:
        self._events: deque[RequestEvent] = deque(maxlen=maxlen)
        self._listeners: list[Callable[[RequestEvent], None]] = []
        self._lock = threading.Lock()

    def record(self, event: RequestEvent) -> None:
        with self._lock:
            self._events.append(event)
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken view must never break a request
                logging.getLogger(__name__).exception("metrics listener failed")

    def subscribe(self, listener: Callable[[RequestEvent], None]) -> Callable[[], None]:
        """Call ``listener`` for each new event; returns the function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def snapshot(self) -> list[RequestEvent]:
        with self._lock:
            return list(self._events)

    @property
    def last(self) -> RequestEvent | None:
        with self._lock:
            return self._events[-1] if self._events else None


class FanOut:
    """Hands every event to several sinks."""

    def __init__(self, sinks: Iterable[MetricsSink]) -> None:
        self.sinks = list(sinks)

    def record(self, event: RequestEvent) -> None:
        for sink in self.sinks:
            try:
                sink.record(event)
            except Exception:  # telemetry must never fail a request
                logging.getLogger(__name__).exception("metrics sink %r failed", sink)
