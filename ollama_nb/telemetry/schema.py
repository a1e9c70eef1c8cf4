"""The metrics database's schema and the migrations that reach it.

The version lives in SQLite's own ``PRAGMA user_version``; each migration moves
the file up one version inside the caller's write transaction, so two kernels
opening an old file at the same time cannot both migrate it. Migrations only
ever add: a kernel still running an older ollama_nb keeps writing the columns it
knows, and the new ones stay NULL for its rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ..domain import OllamaNbError

Migration = Callable[[sqlite3.Connection], None]


def _v1(db: sqlite3.Connection) -> None:
    """The first release: one row per request, figures only, plus history text."""
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            model TEXT NOT NULL,
            host TEXT NOT NULL,
            status TEXT NOT NULL,
            error_type TEXT,
            done_reason TEXT,
            latency_s REAL,
            ttft_s REAL,
            load_s REAL NOT NULL DEFAULT 0,
            cold_load INTEGER NOT NULL DEFAULT 0,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            prompt_eval_s REAL NOT NULL DEFAULT 0,
            eval_tokens INTEGER NOT NULL DEFAULT 0,
            eval_s REAL NOT NULL DEFAULT 0,
            decode_tps REAL,
            prompt_tps REAL,
            image_count INTEGER NOT NULL DEFAULT 0,
            project TEXT
        )
        """
    )
    db.execute("CREATE INDEX events_ts ON events (ts)")
    db.execute(
        """
        CREATE TABLE history (
            event_id INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
            prompt TEXT,
            response TEXT
        )
        """
    )


def _v2(db: sqlite3.Connection) -> None:
    """What v2 adds to v1, for the reports: queue wait, retries, image savings, notebook, profile."""
    for column in (
        "error_message TEXT",
        "total_s REAL",
        "queue_wait_s REAL NOT NULL DEFAULT 0",
        "retries INTEGER NOT NULL DEFAULT 0",
        "image_bytes_saved INTEGER NOT NULL DEFAULT 0",
        "notebook TEXT",
        "server_profile TEXT",
        "pid INTEGER",
    ):
        db.execute(f"ALTER TABLE events ADD COLUMN {column}")
    db.execute("CREATE INDEX events_model_ts ON events (model, ts)")


def _v3(db: sqlite3.Connection) -> None:
    """A pool of servers: per-host figures (``%ollama metrics``, ``perf``) read by host and time."""
    db.execute("CREATE INDEX events_host_ts ON events (host, ts)")


def _v4(db: sqlite3.Connection) -> None:
    """Tool calling: how many calls each request's reply asked for (counts, never contents)."""
    db.execute("ALTER TABLE events ADD COLUMN tool_calls INTEGER NOT NULL DEFAULT 0")


#: ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[Migration, ...] = (_v1, _v2, _v3, _v4)
SCHEMA_VERSION = len(MIGRATIONS)

#: The columns the writer fills, in insert order.
EVENT_COLUMNS = (
    "request_id",
    "ts",
    "kind",
    "model",
    "host",
    "status",
    "error_type",
    "error_message",
    "done_reason",
    "latency_s",
    "ttft_s",
    "total_s",
    "load_s",
    "cold_load",
    "prompt_tokens",
    "prompt_eval_s",
    "eval_tokens",
    "eval_s",
    "decode_tps",
    "prompt_tps",
    "image_count",
    "image_bytes_saved",
    "queue_wait_s",
    "retries",
    "project",
    "notebook",
    "server_profile",
    "pid",
    "tool_calls",
)


class SchemaTooNewError(OllamaNbError):
    """The file was written by a newer ollama_nb; we must not touch it."""


def migrate(db: sqlite3.Connection) -> int:
    """Bring ``db`` to ``SCHEMA_VERSION`` in one write transaction; returns the version found.

    A file already current costs one read and takes no write lock, so readers
    opening it do not queue behind writers.
    """
    if int(db.execute("PRAGMA user_version").fetchone()[0]) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    db.execute("BEGIN IMMEDIATE")
    try:
        found = int(db.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"The metrics database is at schema version {found}; this ollama_nb knows "
                f"up to {SCHEMA_VERSION}.",
                hint="Upgrade ollama_nb, or point OLLAMA_NB_DATA_DIR at another folder.",
            )
        for step in MIGRATIONS[found:]:
            step(db)
        if found != SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return found
