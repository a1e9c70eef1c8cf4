"""Metrics sinks that ship with the core: a JSON request log and a live feed.

Both take an event in microseconds on the caller's path; the request log hands
the line to a logging queue whose listener thread does the file I/O.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from ..application.ports import MetricsSink
from ..domain import RequestEvent
from .private_files import open_private, private_dir
from .sink_failures import FailureNotice

#: While the request log cannot be written, how often to try again.
RETRY_WRITE_S = 30.0

#: One encoder for every line: ``json.dumps`` with arguments builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":")).encode


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
    """One JSON line per request in a rotating file (``requests.log`` in the data dir).

    Written on the caller's thread with a plain buffered append: a logging queue
    with a listener thread competed with the event loop for the GIL and cost
    milliseconds per request in the client benchmark, and ``logging``'s rotating
    handler stats the file on every line. Here the size is tracked in memory and
    the file rotated when it passes ``max_bytes`` (``requests.log.1`` … ``.N``).
    The buffer goes to the file at most every ``flush_every_s`` and on ``close()``
    (the runtime closes it at exit) instead of a write system call, and the GIL
    hand-off around it, on the event loop for every request. The file is private
    (0600 in a 0700 folder). If it cannot be written (an unwritable folder, a
    full disk) the request goes on: one warning names the path and the fix,
    lines are skipped quietly, and writing is retried every ``RETRY_WRITE_S`` s.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 2_000_000,
        backups: int = 3,
        flush_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._backups = backups
        self._flush_every_s = flush_every_s
        self._clock = clock
        self._flushed_at = -math.inf
        self._file: TextIO | None = None
        self._size = 0
        self._lock = threading.Lock()
        self._retry_at = -math.inf
        self.notice = FailureNotice("the request log", path)

    def record(self, event: RequestEvent) -> None:
        line = _encode(event_log_record(event)) + "\n"
        with self._lock:
            now = self._clock()
            if self.notice.failing and now < self._retry_at:
                return
            try:
                if self._file is None:
                    self._open()
                assert self._file is not None
                self._file.write(line)
                if now - self._flushed_at >= self._flush_every_s:
                    self._file.flush()
                    self._flushed_at = now
                self._size += len(line)
                if self._size >= self._max_bytes:
                    self._rotate()
            except OSError as exc:
                self._abandon_file()
                self._retry_at = now + RETRY_WRITE_S
                self.notice.failed(exc, "requests are not logged meanwhile.")
                return
        self.notice.recovered()

    def _open(self) -> None:
        private_dir(self.path.parent)
        fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._size = self._file.tell()

    def _abandon_file(self) -> None:
        if self._file is not None:
            # The unflushed lines are what failed; there is nothing more to save.
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        for index in range(self._backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self._backups > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._open()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                except OSError as exc:
                    self.notice.failed(exc, "the last requests were not logged.")
                self._file = None


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
    """Hands every event to several sinks; a failing one is reported once, then quiet.

    Our own sinks handle their files' failures themselves; this guards the rest
    (a user's ``add_sink``), keyed by the sink, so a fresh ``FanOut`` per request
    does not repeat the warning.
    """

    def __init__(self, sinks: Iterable[MetricsSink]) -> None:
        self.sinks = list(sinks)

    def record(self, event: RequestEvent) -> None:
        for sink in self.sinks:
            try:
                sink.record(event)
            except Exception as exc:  # telemetry must never fail a request
                _notice_for(sink).failed(exc, "its events are dropped while it fails.")
            else:
                notice = _notices.get(id(sink))
                if notice is not None and notice.failing:
                    notice.recovered()


_notices: dict[int, FailureNotice] = {}
_notices_lock = threading.Lock()


def _notice_for(sink: MetricsSink) -> FailureNotice:
    with _notices_lock:
        notice = _notices.get(id(sink))
        if notice is None or notice.what != _sink_name(sink):
            notice = _notices[id(sink)] = FailureNotice(_sink_name(sink))
        return notice


def _sink_name(sink: MetricsSink) -> str:
    path = getattr(sink, "path", None)
    name = f"metrics sink {type(sink).__name__}"
    return f"{name} ({path})" if path is not None else name
