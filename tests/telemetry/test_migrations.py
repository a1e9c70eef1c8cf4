"""Opening files written by older (and newer) versions of the store."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from ollama_nb import metrics
from ollama_nb.telemetry import TelemetryStore
from ollama_nb.telemetry.schema import SCHEMA_VERSION, SchemaTooNewError

from .conftest import make_event

#: The schema as the first release wrote it, frozen here on purpose: the test must
#: keep describing that old file even when ``schema.py`` changes.
V1_SCHEMA = """
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
);
CREATE INDEX events_ts ON events (ts);
CREATE TABLE history (
    event_id INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    prompt TEXT,
    response TEXT
);
PRAGMA user_version = 1;
"""


def _v1_file(path: Path, ts: float) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
        db.execute(
            "INSERT INTO events (request_id, ts, kind, model, host, status, latency_s, "
            "eval_tokens, eval_s, decode_tps, project) "
            "VALUES ('old1', ?, 'chat', 'llama3.2:latest', 'http://x', 'ok', 1.5, 30, 1.0, 30.0, 'p')",
            (ts,),
        )
        db.execute("INSERT INTO history VALUES (1, 'old prompt', 'old answer')")
    db.close()


def test_v1_file_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "metrics.sqlite"
    _v1_file(path, time.time() - 3600)
    store = TelemetryStore(path)
    store.record(make_event(2, latency_s=2.0, queue_wait_s=0.5, retries=2))
    store.close()

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
        assert {"queue_wait_s", "retries", "notebook", "server_profile"} <= columns
        rows = db.execute(
            "SELECT request_id, latency_s, queue_wait_s, retries FROM events ORDER BY id"
        ).fetchall()
        assert db.execute("SELECT prompt FROM history WHERE event_id = 1").fetchone() == (
            "old prompt",
        )
    db.close()
    # The old row gets the new columns' defaults; the new row has its figures.
    assert rows == [("old1", 1.5, 0.0, 0), ("req000002", 2.0, 0.5, 2)]


def test_migrated_file_reads_back_as_a_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ollama_nb.runtime import Runtime
    from ollama_nb.settings import load_settings

    _v1_file(tmp_path / "metrics.sqlite", time.time() - 3600)
    runtime = Runtime(load_settings(data_dir=tmp_path, request_log=False))
    try:
        frame = metrics(runtime=runtime)
        assert frame["request_id"].tolist() == ["old1"]
        assert frame.loc[0, "decode_tps"] == 30.0
        assert frame.loc[0, "retries"] == 0
    finally:
        runtime.close()


def test_file_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "metrics.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE future (x)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    store = TelemetryStore(path)
    with pytest.raises(SchemaTooNewError, match="Upgrade ollama_nb"), store.connect():
        pass
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("future",)]
    db.close()


def test_two_stores_opening_a_fresh_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "metrics.sqlite"
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_it() -> None:
        barrier.wait()
        try:
            with TelemetryStore(path).connect():
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
