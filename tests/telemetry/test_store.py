"""The SQLite store: rows written, file settings, history switch, threads, retention."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from ollama_nb.telemetry import Retention, TelemetryStore
from ollama_nb.telemetry.schema import SCHEMA_VERSION

from .conftest import NS, make_event


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_recorded_event_lands_with_every_figure(store: TelemetryStore) -> None:
    store.record(
        make_event(
            1,
            model="llama3.2",
            total_ns=3 * NS,
            load_ns=2 * NS,
            prompt_eval_count=40,
            prompt_eval_ns=NS // 2,
            eval_count=100,
            eval_ns=4 * NS,
            ttft_s=0.3,
            latency_s=2.5,
            queue_wait_s=0.2,
            retries=1,
        )
    )
    assert store.flush()
    (row,) = _rows(
        store.path,
        "SELECT model, kind, status, latency_s, ttft_s, load_s, cold_load, prompt_tokens, "
        "prompt_eval_s, eval_tokens, eval_s, decode_tps, prompt_tps, queue_wait_s, retries, "
        "total_s, project, pid FROM events",
    )
    assert row == (
        "llama3.2:latest",  # stored canonical, so `llama3.2` and `llama3.2:latest` group together
        "chat",
        "ok",
        2.5,
        0.3,
        2.0,
        1,
        40,
        0.5,
        100,
        4.0,
        25.0,
        80.0,
        0.2,
        1,
        3.0,
        "tests",
        os.getpid(),
    )


def test_file_is_private_wal_and_current_schema(store: TelemetryStore) -> None:
    store.record(make_event())
    assert store.flush()
    for path in (store.path, Path(f"{store.path}-wal")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_existing_world_readable_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "metrics.sqlite"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    made = TelemetryStore(path)
    made.record(make_event())
    assert made.flush()
    made.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_history_on_keeps_prompt_and_answer(store: TelemetryStore) -> None:
    store.record(make_event(prompt="what is a llama?", response="a camelid"))
    assert store.flush()
    assert _rows(store.path, "SELECT prompt, response FROM history") == [
        ("what is a llama?", "a camelid")
    ]


def test_history_off_leaves_no_prompt_bytes_in_any_file(tmp_path: Path) -> None:
    secret = "zebra-quartz-7781 my private question"
    made = TelemetryStore(tmp_path / "metrics.sqlite", history=False)
    for n in range(20):
        made.record(make_event(n, prompt=secret, response=f"answer about {secret}"))
    assert made.flush()
    made.close()
    files = list(tmp_path.iterdir())
    assert files  # the db (and its WAL) exist
    for path in files:
        assert b"zebra-quartz" not in path.read_bytes(), path
    assert _rows(tmp_path / "metrics.sqlite", "SELECT count(*) FROM events") == [(20,)]


def test_history_switch_is_read_per_batch(tmp_path: Path) -> None:
    switch = {"on": True}
    made = TelemetryStore(tmp_path / "m.sqlite", history=lambda: switch["on"])
    made.record(make_event(1, prompt="kept"))
    assert made.flush()
    switch["on"] = False
    made.record(make_event(2, prompt="dropped"))
    assert made.flush()
    made.close()
    assert _rows(made.path, "SELECT prompt FROM history") == [("kept",)]


def test_threads_writing_at_once_lose_nothing(store: TelemetryStore) -> None:
    per_thread, threads = 250, 8

    def work(t: int) -> None:
        for n in range(per_thread):
            store.record(make_event(t * 10_000 + n))

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert store.flush()
    assert _rows(store.path, "SELECT count(*), count(DISTINCT request_id) FROM events") == [
        (per_thread * threads, per_thread * threads)
    ]


def test_two_stores_on_one_file_both_land(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    first, second = TelemetryStore(path), TelemetryStore(path)
    for n in range(200):
        (first if n % 2 else second).record(make_event(n))
    first.close()
    second.close()
    assert _rows(path, "SELECT count(*) FROM events") == [(200,)]


def test_close_writes_queued_events_and_recording_again_restarts(tmp_path: Path) -> None:
    made = TelemetryStore(tmp_path / "m.sqlite")
    for n in range(50):
        made.record(make_event(n))
    made.close()
    assert _rows(made.path, "SELECT count(*) FROM events") == [(50,)]
    made.record(make_event(99))
    made.close()
    assert _rows(made.path, "SELECT count(*) FROM events") == [(51,)]


def test_unwritable_location_never_fails_a_record(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir should be")
    made = TelemetryStore(blocker / "metrics.sqlite")
    made.record(make_event())
    assert made.flush()  # the writer survived and answered
    made.close()
    from ollama_nb.telemetry.store import MetricsStoreError

    with pytest.raises(MetricsStoreError, match="Cannot open the metrics store"), made.connect():
        pass


def test_retention_by_age_runs_in_the_writer_and_on_demand(tmp_path: Path) -> None:
    clock = {"now": 1_700_000_000.0}
    made = TelemetryStore(
        tmp_path / "m.sqlite",
        retention=Retention(max_age_days=7, max_bytes=None),
        clock=lambda: clock["now"],
    )
    day = 86_400
    made.record(make_event(1, started_at=clock["now"] - 8 * day, prompt="old"))
    made.record(make_event(2, started_at=clock["now"] - 6 * day, prompt="recent"))
    made.record(make_event(3, started_at=clock["now"] - 1 * day, prompt="new"))
    assert made.flush()
    # The writer applies retention after its first batch: the 8-day-old row is gone.
    assert _rows(made.path, "SELECT request_id FROM events") == [("req000002",), ("req000003",)]
    clock["now"] += 2 * day
    assert made.prune() == 1
    made.close()
    assert _rows(made.path, "SELECT request_id FROM events") == [("req000003",)]
    assert _rows(made.path, "SELECT prompt FROM history") == [("new",)]


def test_retention_by_size_keeps_the_newest_under_the_limit(tmp_path: Path) -> None:
    limit = 256 * 1024
    made = TelemetryStore(
        tmp_path / "m.sqlite", retention=Retention(max_age_days=None, max_bytes=limit)
    )
    text = "x" * 2000
    made.record(make_event(-1, started_at=1_700_000_000.0 - 1))
    assert made.flush()  # the first batch runs the writer's own start-up prune
    for n in range(600):  # about 1.2 MB of history text
        made.record(make_event(n, started_at=1_700_000_000.0 + n, prompt=text))
    assert made.flush()
    removed = made.prune()
    made.close()
    with sqlite3.connect(made.path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        used = (
            db.execute("PRAGMA page_count").fetchone()[0]
            - db.execute("PRAGMA freelist_count").fetchone()[0]
        ) * page_size
        left = db.execute("SELECT min(ts), max(ts), count(*) FROM events").fetchone()
    assert used <= limit
    assert removed > 1 and left[2] == 601 - removed
    assert left[1] == 1_700_000_000.0 + 599  # the newest survived
    assert left[0] == 1_700_000_000.0 + removed - 1  # the oldest went first


@pytest.mark.parametrize(
    ("days", "size"), [(0, None), (-1, None), (None, 1000)], ids=["zero", "negative", "tiny"]
)
def test_retention_limits_are_validated(days: float | None, size: int | None) -> None:
    from ollama_nb.domain import InvalidInputError

    with pytest.raises(InvalidInputError):
        Retention(max_age_days=days, max_bytes=size)


def test_server_profile_is_stamped_per_batch_and_a_failing_lookup_is_harmless(
    tmp_path: Path,
) -> None:
    current: dict[str, str | None] = {"profile": "m2-balanced"}

    def lookup() -> str | None:
        if current["profile"] == "boom":
            raise RuntimeError("state file unreadable")
        return current["profile"]

    made = TelemetryStore(tmp_path / "m.sqlite", server_profile=lookup)
    for name in ("m2-balanced", "m2-fast", "boom", None):
        current["profile"] = name
        made.record(make_event())
        assert made.flush()
    made.close()
    assert _rows(made.path, "SELECT server_profile FROM events ORDER BY id") == [
        ("m2-balanced",),
        ("m2-fast",),
        (None,),
        (None,),
    ]


def test_tool_call_counts_are_kept_without_contents(store: TelemetryStore) -> None:
    from dataclasses import replace

    store.record(replace(make_event(7), tool_calls=2))
    assert store.flush()
    assert _rows(store.path, "SELECT tool_calls FROM events") == [(2,)]
    assert _rows(store.path, "SELECT COUNT(*) FROM history") == [(0,)]
