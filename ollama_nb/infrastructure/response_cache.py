"""The response cache's file: one private SQLite database in the data directory.

Several kernels may share it, so it is opened like the metrics store: WAL (readers
never wait for the writer), a busy timeout instead of "database is locked", and
``BEGIN IMMEDIATE`` for every change so two writers never deadlock. It stays
under ``max_bytes`` by evicting the least recently used entries.

An entry is a file we read back, so it is not trusted: it carries the model digest
it was made with and a checksum over its key, digest and reply, and a read whose
digest, checksum or content does not check out is deleted and counted as a miss,
never served and never an error. Every call runs in a worker thread
(``asyncio.to_thread``): SQLite blocks, and the request loop must not.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..application.reply_cache import (
    CACHE_FORMAT,
    CachedReply,
    vector_from_json,
    vector_to_json,
)
from .private_files import private_dir, touch_private

log = logging.getLogger(__name__)
T = TypeVar("T")

CACHE_DB_NAME = "responses.sqlite"
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_BUSY_TIMEOUT_S = 10.0
#: Entries removed per eviction step: one put adds one entry, so one or two steps free its room.
_EVICT_STEP = 1

#: Bumped whenever the tables change. The cache only holds answers that can be asked
#: again, so a file of another version is emptied and rebuilt, never migrated.
SCHEMA_VERSION = 1

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS entries (
        key TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        model TEXT NOT NULL,
        reply TEXT NOT NULL,
        checksum TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        created_at REAL NOT NULL,
        used_at REAL NOT NULL,
        used_seq INTEGER NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0
    )
    """,
    # Recency by a counter, not the clock: two uses in one clock tick still have an order.
    "CREATE INDEX IF NOT EXISTS entries_used ON entries (used_seq)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO counters VALUES ('hits', 0), ('misses', 0), ('bad', 0), ('bytes', 0)",
)


def checksum(key: str, digest: str, reply: str) -> str:
    text = f"{CACHE_FORMAT}\0{key}\0{digest}\0{reply}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One kept answer, as ``%ollama cache`` lists it."""

    model: str
    digest: str
    created_at: float
    used_at: float
    hits: int
    bytes: int
    preview: str


@dataclass(frozen=True, slots=True)
class CacheStats:
    entries: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int
    bad: int
    path: Path

    @property
    def hit_rate(self) -> float | None:
        looked = self.hits + self.misses
        return self.hits / looked if looked else None


class SqliteResponseCache:
    """``ResponseCache`` over one SQLite file; see the module docstring for the rules."""

    def __init__(self, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._warned = False

    # --- the port ------------------------------------------------------------------

    async def get(self, key: str, digest: str) -> CachedReply | None:
        return await asyncio.to_thread(self.lookup, key, digest)

    async def put(self, key: str, digest: str, reply: CachedReply) -> None:
        await asyncio.to_thread(self.store, key, digest, reply)

    async def get_vectors(self, keys: Sequence[str], digest: str) -> list[tuple[float, ...] | None]:
        return await asyncio.to_thread(self.lookup_vectors, keys, digest)

    async def put_vectors(
        self, entries: Sequence[tuple[str, tuple[float, ...]]], digest: str, model: str
    ) -> None:
        await asyncio.to_thread(self.store_vectors, entries, digest, model)

    # --- blocking work (worker threads, or a magic's own thread) --------------------

    def lookup(self, key: str, digest: str) -> CachedReply | None:
        return self._read([key], digest, CachedReply.from_json)[0]

    def lookup_vectors(self, keys: Sequence[str], digest: str) -> list[tuple[float, ...] | None]:
        return self._read(keys, digest, vector_from_json)

    def store(self, key: str, digest: str, reply: CachedReply) -> None:
        self._write([(key, reply.to_json())], digest, reply.model)

    def store_vectors(
        self, entries: Sequence[tuple[str, tuple[float, ...]]], digest: str, model: str
    ) -> None:
        self._write([(k, vector_to_json(v)) for k, v in entries], digest, model)

    def _read(self, keys: Sequence[str], digest: str, parse: Callable[[str], T]) -> list[T | None]:
        try:
            with self._lock:
                return self._lookup(self._connection(), keys, digest, parse)
        except (sqlite3.Error, OSError) as exc:
            self._trouble("read", exc)
            return [None] * len(keys)

    def _write(self, entries: Sequence[tuple[str, str]], digest: str, model: str) -> None:
        try:
            with self._lock:
                self._store(self._connection(), entries, digest, model)
        except (sqlite3.Error, OSError) as exc:
            self._trouble("write", exc)

    def stats(self) -> CacheStats:
        with self._lock:
            db = self._connection()
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM entries"
            ).fetchone()
            counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        return CacheStats(
            entries=int(count),
            bytes=int(size),
            max_bytes=self.max_bytes,
            hits=int(counters.get("hits", 0)),
            misses=int(counters.get("misses", 0)),
            bad=int(counters.get("bad", 0)),
            path=self.path,
        )

    def entries(self, limit: int = 20) -> list[CacheEntry]:
        """The most recently used entries first."""
        with self._lock:
            rows = (
                self._connection()
                .execute(
                    "SELECT model, digest, created_at, used_at, hits, bytes, reply "
                    "FROM entries ORDER BY used_seq DESC LIMIT ?",
                    (limit,),
                )
                .fetchall()
            )
        return [
            CacheEntry(str(m), str(d), float(c), float(u), int(h), int(b), _preview(str(r)))
            for m, d, c, u, h, b, r in rows
        ]

    def clear(self) -> int:
        """Remove every entry and reset the counters; returns how many entries went."""
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                removed = db.execute("DELETE FROM entries").rowcount
                db.execute("UPDATE counters SET value = 0")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("VACUUM")
        return int(removed)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- inside the lock -----------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            private_dir(self.path.parent)
            touch_private(self.path)  # SQLite gives the -wal and -shm files the same mode
            db = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            try:
                db.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
                db.execute("BEGIN IMMEDIATE")
                if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    db.execute("DROP TABLE IF EXISTS entries")
                    db.execute("DROP TABLE IF EXISTS counters")
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.execute("COMMIT")
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _lookup(
        self, db: sqlite3.Connection, keys: Sequence[str], digest: str, parse: Callable[[str], T]
    ) -> list[T | None]:
        """Each key's entry if it checks out; hits, misses and bad entries counted at once."""
        found: list[T | None] = []
        bad: list[str] = []
        for key in keys:
            row = db.execute(
                "SELECT digest, reply, checksum FROM entries WHERE key = ?", (key,)
            ).fetchone()
            value: T | None = None
            if row is not None:
                stored_digest, text, stored_sum = row
                trusted = (
                    isinstance(text, str)
                    and stored_digest == digest
                    and stored_sum == checksum(key, digest, text)
                )
                try:
                    value = parse(text) if trusted else None
                except (ValueError, TypeError):  # json errors are ValueErrors
                    value = None
                if value is None:
                    bad.append(key)
            found.append(value)
        hits = [k for k, v in zip(keys, found, strict=True) if v is not None]
        db.execute("BEGIN IMMEDIATE")
        try:
            now = time.time()
            for key in hits:
                db.execute(
                    "UPDATE entries SET used_at = ?, used_seq = (SELECT MAX(used_seq) + 1 "
                    "FROM entries), hits = hits + 1 WHERE key = ?",
                    (now, key),
                )
            db.execute("UPDATE counters SET value = value + ? WHERE name = 'hits'", (len(hits),))
            misses = len(keys) - len(hits)
            db.execute("UPDATE counters SET value = value + ? WHERE name = 'misses'", (misses,))
            for key in bad:
                log.warning("ollama_nb: a response cache entry failed its checks; it was removed.")
                self._delete(db, "key = ?", (key,))
            db.execute("UPDATE counters SET value = value + ? WHERE name = 'bad'", (len(bad),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return found

    def _store(
        self, db: sqlite3.Connection, entries: Sequence[tuple[str, str]], digest: str, model: str
    ) -> None:
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            for key, text in entries:
                size = len(key) + len(digest) + len(text.encode("utf-8"))
                if size > self.max_bytes:
                    continue  # larger than the whole cache: keeping it would evict everything
                self._delete(db, "key = ?", (key,))
                db.execute(
                    "INSERT INTO entries (key, digest, model, reply, checksum, bytes, created_at, "
                    "used_at, used_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                    "(SELECT COALESCE(MAX(used_seq), 0) + 1 FROM entries))",
                    (key, digest, model, text, checksum(key, digest, text), size, now, now),
                )
                db.execute("UPDATE counters SET value = value + ? WHERE name = 'bytes'", (size,))
            self._evict(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _evict(self, db: sqlite3.Connection) -> None:
        while True:
            total = int(db.execute("SELECT value FROM counters WHERE name = 'bytes'").fetchone()[0])
            if total <= self.max_bytes:
                return
            oldest = "key IN (SELECT key FROM entries ORDER BY used_seq LIMIT ?)"
            if not self._delete(db, oldest, (_EVICT_STEP,)):
                db.execute("UPDATE counters SET value = 0 WHERE name = 'bytes'")
                return

    @staticmethod
    def _delete(db: sqlite3.Connection, where: str, args: tuple[object, ...]) -> int:
        """Delete matching entries and take their size off the running total."""
        freed, count = db.execute(
            f"SELECT COALESCE(SUM(bytes), 0), COUNT(*) FROM entries WHERE {where}", args
        ).fetchone()
        if count:
            db.execute(f"DELETE FROM entries WHERE {where}", args)
            db.execute("UPDATE counters SET value = value - ? WHERE name = 'bytes'", (freed,))
        return int(count)

    def _trouble(self, what: str, exc: Exception) -> None:
        """A broken cache file costs speed, never a request: say so once, then stay quiet."""
        if not self._warned:
            self._warned = True
            log.warning(
                "ollama_nb: the response cache could not %s %s (%s); answers are not cached.",
                what,
                self.path,
                exc,
            )


def _preview(reply_json: str) -> str:
    """The start of an entry's answer for a listing; the entry is parsed (and checked) first."""
    try:
        if reply_json.startswith("["):
            return f"(embedding vector, {len(vector_from_json(reply_json))} numbers)"
        text = CachedReply.from_json(reply_json).text
    except (ValueError, TypeError):
        return "(unreadable: it will be dropped when next asked for)"
    line = " ".join(text.split())
    return line if len(line) <= 80 else line[:79] + "…"
