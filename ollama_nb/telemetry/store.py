"""The metrics store: one SQLite file in the data dir, written off the request path.

``record()`` only puts the event on a queue (microseconds, no I/O); a writer
thread takes everything queued, writes it in one transaction, and goes back to
waiting. Several kernels and batch processes may share the file: WAL lets
readers and one writer work at once, ``busy_timeout`` makes a writer wait for
another instead of failing with "database is locked", and ``BEGIN IMMEDIATE``
takes the write lock before reading, so two writers never deadlock upgrading a
read lock. The file is created private to the user (0600); SQLite gives its WAL
and shared-memory files the same mode. Prompts and answers go to a separate
``history`` table only while history is on, and ``secure_delete`` overwrites
them when retention removes their rows.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..domain import InvalidInputError, ModelName, OllamaNbError, RequestEvent
from ..infrastructure.private_files import private_dir, touch_private
from ..infrastructure.sink_failures import FailureNotice
from .context import notebook_path, project_label
from .schema import EVENT_COLUMNS, migrate

log = logging.getLogger(__name__)

DB_NAME = "metrics.sqlite"
DEFAULT_RETENTION_DAYS = 90.0
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
_BUSY_TIMEOUT_S = 10.0
_PRUNE_EVERY_S = 3600.0
#: Events kept in memory while the file cannot be written (a full disk), then saved.
MAX_HELD_EVENTS = 50_000
#: How long the writer gathers events after the first one before writing them in one
#: transaction. Waking it for every event put a SQLite write, and the GIL hand-offs
#: around it, inside the next request of a back-to-back loop (about 1 ms a request
#: in bench/bench_client_overhead.py); ``flush()`` and ``close()`` cut the wait short.
_LINGER_S = 0.5
_SECONDS_PER_DAY = 86_400.0

_INSERT_EVENT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})"
)
_INSERT_HISTORY = "INSERT INTO history (event_id, prompt, response) VALUES (?, ?, ?)"


@dataclass(frozen=True, slots=True)
class Retention:
    """How much to keep: rows younger than ``max_age_days`` in at most ``max_bytes`` of pages.

    ``None`` switches a limit off. The size limit counts pages in use, so the file
    stops growing at about that size and shrinks as freed pages are released.
    """

    max_age_days: float | None = DEFAULT_RETENTION_DAYS
    max_bytes: int | None = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if self.max_age_days is not None and self.max_age_days <= 0:
            raise InvalidInputError("Metrics retention must be a positive number of days.")
        if self.max_bytes is not None and self.max_bytes < 64 * 1024:
            raise InvalidInputError("Metrics size limit must be at least 64 KiB.")


class MetricsStoreError(OllamaNbError):
    """The metrics file could not be opened or read."""


class _Flush:
    """A marker on the queue: set once everything queued before it is written."""

    def __init__(self) -> None:
        self.done = threading.Event()


class _Stop(_Flush):
    pass


def open_database(path: Path) -> sqlite3.Connection:
    """A connection to the metrics file, created private and migrated to the current schema."""
    private_dir(path.parent)
    touch_private(path)  # SQLite gives the -wal and -shm files the same mode
    db = sqlite3.connect(
        path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        db.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        # Only takes effect on a file without tables; lets retention give space back.
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA secure_delete = ON")
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def prune(db: sqlite3.Connection, retention: Retention, now: float) -> int:
    """Delete rows past the age limit, then the oldest rows until under the size limit.

    Returns how many events were removed (their history goes with them).
    """
    removed = 0
    db.execute("BEGIN IMMEDIATE")
    try:
        if retention.max_age_days is not None:
            cutoff = now - retention.max_age_days * _SECONDS_PER_DAY
            removed += db.execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
        if retention.max_bytes is not None:
            removed += _shrink_to(db, retention.max_bytes)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    if removed:
        db.execute("PRAGMA incremental_vacuum")
    return removed


def _used_bytes(db: sqlite3.Connection) -> int:
    page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    return (pages - free) * page_size


def _shrink_to(db: sqlite3.Connection, max_bytes: int) -> int:
    """Drop oldest events in proportion to the overshoot, aiming a little under the limit."""
    removed = 0
    for _ in range(20):
        used = _used_bytes(db)
        if used <= max_bytes:
            break
        rows = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
        if rows == 0:
            break
        share = 1.0 - (0.9 * max_bytes) / used
        count = max(1, math.ceil(rows * share))
        removed += db.execute(
            "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY ts, id LIMIT ?)",
            (count,),
        ).rowcount
    return removed


def _canonical_model(name: str) -> str:
    try:
        return ModelName(name).canonical
    except InvalidInputError:
        return name


class TelemetryStore:
    """A ``MetricsSink`` that keeps every request event in ``data_dir/metrics.sqlite``.

    ``history`` (a flag or a function read per batch) says whether prompts and
    answers are kept; ``server_profile`` names the server tuning active when a
    batch is written, so runs under different profiles can be compared later.
    Both run on the writer thread, never on the caller's.
    """

    def __init__(
        self,
        path: Path,
        *,
        history: bool | Callable[[], bool] = True,
        retention: Retention | None = None,
        clock: Callable[[], float] = time.time,
        server_profile: Callable[[], str | None] | None = None,
    ) -> None:
        self.path = path
        self.retention = retention or Retention()
        self._history = history
        self._clock = clock
        self._server_profile = server_profile
        self._queue: queue.SimpleQueue[RequestEvent | _Flush] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._held: list[RequestEvent] = []
        self.notice = FailureNotice("the metrics store", path)
        self._last_prune = -math.inf

    # --- the hot path ----------------------------------------------------------------

    def record(self, event: RequestEvent) -> None:
        """Queue ``event``; the writer thread stores it. Never blocks on I/O.

        The writer is woken by the first event after a quiet spell only: while it
        lingers, a put is an append that wakes no thread.
        """
        if self._writer is None:
            self._start()
        self._queue.put(event)

    # --- control ---------------------------------------------------------------------

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until everything recorded so far is in the file; False on timeout."""
        if self._writer is None or not self._writer.is_alive():
            return True
        marker = _Flush()
        self._queue.put(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is queued and stop the writer; later records start a new one."""
        with self._start_lock:
            writer, self._writer = self._writer, None
        if writer is None:
            return
        stop = _Stop()
        self._queue.put(stop)
        self._wake.set()
        stop.done.wait(timeout)
        writer.join(timeout)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def prune(self) -> int:
        """Apply the retention limits now; returns how many events were removed."""
        with self.connect() as db:
            return prune(db, self.retention, self._clock())

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection for queries (readers never block the writer in WAL)."""
        try:
            db = open_database(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise MetricsStoreError(
                f"Cannot open the metrics store {self.path} ({exc}).",
                hint="Check that the folder is writable, or set OLLAMA_NB_DATA_DIR elsewhere.",
            ) from exc
        try:
            yield db
        finally:
            db.close()

    # --- the writer thread -----------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._writer is not None:
                return
            self._writer = threading.Thread(
                target=self._run, name="ollama_nb-telemetry", daemon=True
            )
            self._writer.start()
            atexit.register(self.close)

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            while True:
                batch = [self._queue.get()]
                if not isinstance(batch[0], _Flush):
                    self._wake.wait(_LINGER_S)
                self._wake.clear()
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                events = [item for item in batch if isinstance(item, RequestEvent)]
                if events or (self._held and any(isinstance(i, _Flush) for i in batch)):
                    db = self._save([*self._held, *events], db)
                for item in batch:
                    if isinstance(item, _Flush):
                        item.done.set()
                if any(isinstance(item, _Stop) for item in batch):
                    return
        finally:
            if db is not None:
                db.close()

    def _save(
        self, events: list[RequestEvent], db: sqlite3.Connection | None
    ) -> sqlite3.Connection | None:
        """Write ``events`` (held ones first); on failure hold them for the next batch.

        A full disk or an unwritable folder costs one warning, not a traceback
        per request, and no event: they wait in memory (up to ``MAX_HELD_EVENTS``,
        oldest dropped first) and are written when the file works again.
        """
        held_before = len(self._held)
        try:
            db = db or self._open()
            self._write(db, events)
        except Exception as exc:  # keep the thread alive for the next events
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            dropped = max(0, len(events) - MAX_HELD_EVENTS)
            self._held = events[dropped:]
            if dropped:
                log.debug("ollama_nb: %d held metrics events dropped", dropped)
            self.notice.failed(exc, "events are held in memory and saved when it works again.")
            return None
        self._held = []
        self.notice.recovered(f" ({held_before} held events saved)" if held_before else "")
        with contextlib.suppress(Exception):
            self._maybe_prune(db)
        return db

    def _open(self) -> sqlite3.Connection:
        """Open the file, waiting out another kernel that is creating or migrating it.

        Switching a new file to WAL and creating its tables take the write lock, and
        SQLite can answer "database is locked" there without waiting for busy_timeout.
        """
        delay = 0.05
        for _attempt in range(20):
            try:
                return open_database(self.path)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                time.sleep(delay)  # the writer thread's own time, never a caller's
                delay = min(delay * 2, 1.0)
        raise sqlite3.OperationalError("database is locked")

    def _keep_history(self) -> bool:
        return self._history() if callable(self._history) else self._history

    def _profile(self) -> str | None:
        if self._server_profile is None:
            return None
        try:
            return self._server_profile()
        except Exception:  # a failing lookup must not cost us the events
            log.debug("server profile lookup failed", exc_info=True)
            return None

    def _write(self, db: sqlite3.Connection, events: list[RequestEvent]) -> None:
        notebook = notebook_path()
        fallback_project = project_label(None)
        profile = self._profile()
        history = self._keep_history()
        pid = os.getpid()
        delay = 0.05
        for _attempt in range(30):
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    for event in events:
                        row = _event_row(event, notebook, fallback_project, profile, pid)
                        cursor = db.execute(_INSERT_EVENT, row)
                        if history and (event.prompt or event.response):
                            db.execute(
                                _INSERT_HISTORY, (cursor.lastrowid, event.prompt, event.response)
                            )
                    db.execute("COMMIT")
                    return
                except BaseException:
                    if db.in_transaction:  # SQLite may have rolled back itself (disk full)
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                time.sleep(delay)  # another writer held the lock past busy_timeout
                delay = min(delay * 2, 1.0)
        raise sqlite3.OperationalError("the database stayed locked by another writer")

    def _maybe_prune(self, db: sqlite3.Connection) -> None:
        now = self._clock()
        if now - self._last_prune < _PRUNE_EVERY_S:
            return
        self._last_prune = now
        try:
            prune(db, self.retention, now)
        except sqlite3.Error as exc:  # hourly at most; the events themselves are saved
            log.warning("ollama_nb could not apply metrics retention to %s: %s", self.path, exc)


def _event_row(
    event: RequestEvent,
    notebook: str | None,
    fallback_project: str,
    profile: str | None,
    pid: int,
) -> tuple[object, ...]:
    t = event.timings
    values: dict[str, object] = {
        "request_id": event.request_id,
        "ts": event.started_at,
        "kind": event.kind,
        "model": _canonical_model(event.model),
        "host": event.host,
        "status": event.status,
        "error_type": event.error_type,
        "error_message": event.error_message,
        "done_reason": event.done_reason,
        "latency_s": t.latency_s,
        "ttft_s": t.ttft_s,
        "total_s": t.total_s if t.total_ns else None,
        "load_s": t.load_s,
        "cold_load": int(t.cold_load),
        "prompt_tokens": t.prompt_eval_count,
        "prompt_eval_s": t.prompt_eval_ns / 1e9,
        "eval_tokens": t.eval_count,
        "eval_s": t.eval_ns / 1e9,
        "decode_tps": t.decode_tps,
        "prompt_tps": t.prompt_tps,
        "image_count": event.image_count,
        "image_bytes_saved": event.image_bytes_saved,
        "queue_wait_s": t.queue_wait_s,
        "retries": t.retries,
        "project": event.project or fallback_project,
        "notebook": notebook,
        "server_profile": profile,
        "pid": pid,
        "tool_calls": event.tool_calls,
    }
    return tuple(values[column] for column in EVENT_COLUMNS)
