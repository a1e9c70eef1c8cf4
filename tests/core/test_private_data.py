"""The data directory is private (0700, files 0600), and a sink that cannot write warns once.

Everything runs through the product (requests to the stand-in, the real
metrics store, the server's lock and state files, a batch checkpoint); the
folder is inspected afterwards with ``os.stat``. An unwritable folder is made
by putting a regular file where the folder should be, which refuses writes
for every user (root included), unlike a ``chmod``.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

import ollama_nb
from ollama_nb.batch.checkpoint import Checkpoint, RowSigner
from ollama_nb.domain import RequestEvent
from ollama_nb.infrastructure.event_sinks import FanOut
from ollama_nb.infrastructure.private_files import private_dir
from ollama_nb.ollama_process.process import NotOwnedError, ServerProcess
from ollama_nb.runtime import Runtime
from ollama_nb.testing.pytest_plugin import RuntimeFactory

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX permissions")


@pytest.fixture
def make_runtime(ollama_standin: Any, ollama_runtime_factory: RuntimeFactory) -> Any:
    def make(data_dir: Path) -> Runtime:
        return ollama_runtime_factory(
            ollama_standin.url, data_dir=data_dir, retry_backoff_s=0.0, request_log=True
        )

    return make


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _exercise(runtime: Runtime, data_dir: Path) -> None:
    ollama_nb.chat("hello", model="llama3.2")
    assert len(ollama_nb.metrics(runtime=runtime)) >= 1  # the store wrote its file
    server = ServerProcess(runtime.settings.ollama_host, data_dir)
    with pytest.raises(NotOwnedError):  # the stand-in is not ours: refused, after taking the lock
        server.stop()
    Checkpoint(
        data_dir / "batches" / "reviews.sqlite", RowSigner(runtime.checkpoint_secret())
    ).close()


@posix_only
def test_a_fresh_data_directory_is_0700_with_0600_files(
    make_runtime: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    runtime = make_runtime(data_dir)
    _exercise(runtime, data_dir)
    runtime.close()

    modes = _modes(data_dir)
    assert {"requests.log", "metrics.sqlite", "server", "batches/reviews.sqlite"} <= set(modes)
    assert any(name.startswith("server/") for name in modes)
    for name, mode in modes.items():
        expected = 0o700 if (data_dir / name).is_dir() else 0o600
        assert mode == expected, f"{name}: {mode:04o}"
    assert "made the" not in caplog.text  # nothing needed tightening: created private


@posix_only
def test_looser_folders_and_files_are_tightened_with_one_notice_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "server").mkdir(parents=True)
    data_dir.chmod(0o755)
    (data_dir / "server").chmod(0o775)
    log = data_dir / "requests.log"
    log.write_text("{}\n")
    log.chmod(0o644)

    with caplog.at_level(logging.WARNING, logger="ollama_nb"):
        from ollama_nb.infrastructure.event_sinks import JsonRequestLog

        sink = JsonRequestLog(log)
        sink.record(_event())
        private_dir(data_dir / "server", within=data_dir)
        private_dir(data_dir / "server", within=data_dir)  # already private: silent
        sink.close()

    notices = [r.getMessage() for r in caplog.records if "made the" in r.getMessage()]
    assert len(notices) == 3, notices
    assert any(f"folder {data_dir} private (0755 -> 0700)" in n for n in notices)
    assert any(f"folder {data_dir / 'server'} private (0775 -> 0700)" in n for n in notices)
    assert any(f"file {log} private (0644 -> 0600)" in n for n in notices)
    assert _modes(data_dir) == {".": 0o700, "server": 0o700, "requests.log": 0o600}
    assert log.read_text().count("\n") == 2  # the old line kept, one appended


def test_checkpoint_leaves_the_users_folder_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    Checkpoint(tmp_path / "rows.sqlite", RowSigner(b"k" * 32)).close()
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
    if os.name == "posix":
        assert stat.S_IMODE((tmp_path / "rows.sqlite").stat().st_mode) == 0o600


def test_unwritable_data_dir_warns_once_per_sink_and_requests_succeed(
    make_runtime: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    data_dir = blocker / "data"
    runtime = make_runtime(data_dir)

    with caplog.at_level(logging.DEBUG, logger="ollama_nb"):
        answers = [ollama_nb.chat(f"question {n}", model="llama3.2").text for n in range(4)]
        runtime.telemetry.flush()

    assert all(f"question {n}" in answers[n] for n in range(4))  # every request succeeded
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(r.exc_info is None for r in caplog.records)  # no traceback, ever
    by_sink = sorted(r.getMessage() for r in warnings)
    assert len(by_sink) == 2, by_sink
    log_line, store_line = by_sink[1], by_sink[0]
    assert "the request log cannot be written to" in log_line
    assert "the metrics store cannot be written to" in store_line
    for line in by_sink:
        assert str(data_dir) in line
        assert f"make {data_dir} writable" in line and "OLLAMA_NB_DATA_DIR" in line
    assert len(runtime.recent.snapshot()) == 4  # the live feed still has every event


def test_unwritable_store_keeps_events_and_saves_them_when_it_works_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ollama_nb.telemetry.store import TelemetryStore

    blocker = tmp_path / "data"
    blocker.write_text("in the way")
    store = TelemetryStore(blocker / "metrics.sqlite")
    with caplog.at_level(logging.WARNING, logger="ollama_nb"):
        for n in range(3):
            store.record(_event(f"r{n}"))
            assert store.flush()
        blocker.unlink()  # the user fixes it
        store.record(_event("r3"))
        assert store.flush()
    store.close()

    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "held in memory" in messages[0]
    assert "written again (3 held events saved)" in messages[1]
    with store.connect() as db:
        ids = [row[0] for row in db.execute("SELECT request_id FROM events ORDER BY id")]
    assert ids == ["r0", "r1", "r2", "r3"]


def test_fanout_reports_a_failing_sink_once(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        path = Path("/somewhere/else.jsonl")

        def record(self, event: RequestEvent) -> None:
            raise OSError(28, "No space left on device")

    broken, seen = Broken(), []

    class Working:
        def record(self, event: RequestEvent) -> None:
            seen.append(event)

    with caplog.at_level(logging.WARNING, logger="ollama_nb"):
        for n in range(5):
            FanOut([broken, Working()]).record(_event(f"e{n}"))
    assert len(seen) == 5
    [message] = [r.getMessage() for r in caplog.records]
    assert "metrics sink Broken (/somewhere/else.jsonl)" in message
    assert "Free some disk space" in message


def _event(request_id: str = "r") -> RequestEvent:
    from ollama_nb.domain import Timings

    return RequestEvent(
        request_id=request_id,
        kind="chat",
        model="llama3.2",
        host="http://127.0.0.1:1",
        started_at=time.time(),
        status="ok",
        timings=Timings(),
    )


@posix_only
def test_the_checkpoint_key_is_private_stable_and_replaced_when_damaged(tmp_path: Path) -> None:
    from ollama_nb.infrastructure.private_files import private_secret

    path = tmp_path / "data" / "checkpoint.key"
    first = private_secret(path)
    assert len(first) == 32 and private_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.write_bytes(b"short")
    again = private_secret(path)
    assert len(again) == 32 and again != first and path.read_bytes() == again
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.key"]  # no leftovers


@posix_only
def test_two_writers_in_one_process_end_with_one_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads of one Dask worker made the key at once: one's rename found nothing.

    The interleaving is forced: just before the first writer links its file into
    place, a second writer in the same process runs from start to end.
    """
    from ollama_nb.infrastructure import private_files

    path = tmp_path / "data" / "checkpoint.key"
    real_link = os.link
    state: dict[str, object] = {"inside": False, "nested": None}

    def link(source: Any, target: Any) -> None:
        if not state["inside"]:
            state["inside"] = True
            state["nested"] = private_files.private_secret(path)
        real_link(source, target)

    monkeypatch.setattr(private_files.os, "link", link)
    outer = private_files.private_secret(path)
    assert state["nested"] == outer == path.read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.key"]  # no leftovers
