"""Checkpoints survive a killed process; interrupts return what finished and free the server."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from ollama_nb.batch import SUMMARY_KEY
from ollama_nb.domain import RequestEvent
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.testing import StandinHandle
from ollama_nb.testing.pytest_plugin import StandinFactory

from .conftest import chat_prompts, make_runtime

pytestmark = pytest.mark.concurrency

ROWS = 40
WORKER = textwrap.dedent(
    """
    import sys
    import pandas as pd
    import ollama_nb.batch
    from ollama_nb.runtime import Runtime, set_runtime
    from ollama_nb.settings import load_settings

    url, checkpoint, rows, data_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    # The same data directory as the resuming test: rows are sealed with this user's key.
    set_runtime(Runtime(load_settings(host=url, default_model="llama3.2", request_log=False,
                                      data_dir=data_dir, parallel=2)))
    frame = pd.DataFrame({"n": range(rows)})
    frame.ollama.chat("Item number {n}", checkpoint=checkpoint, progress=False)
    print("finished all rows")
    """
)


def stored_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM rows").fetchone()[0])
        except sqlite3.OperationalError:  # table not created yet
            return 0


@pytest.fixture
def slow_standin(ollama_standin_factory: StandinFactory) -> StandinHandle:
    # ~4 tokens per reply at 40 tokens/s: about 0.1 s per row and slot.
    return ollama_standin_factory(num_parallel=2, tokens_per_second=40)


@pytest.fixture
def slow_runtime(slow_standin: StandinHandle, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(slow_standin.url, tmp_path, parallel=2)
    previous = set_runtime(rt)
    try:
        yield rt
    finally:
        set_runtime(previous)
        rt.close()


def test_resume_after_sigkill_runs_each_row_exactly_once(
    slow_standin: StandinHandle, slow_runtime: Runtime, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "run.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WORKER,
            slow_standin.url,
            str(checkpoint),
            str(ROWS),
            str(slow_runtime.settings.data_dir),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # The checkpoint is another process's file: polling it is the only signal.
        # pytest-timeout bounds the wait; the stall keeps the worker from finishing
        # every row before the kill, however the machine schedules us.
        while stored_rows(checkpoint) < 8:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.02)
        slow_standin.inject("stall", count=ROWS, path="/api/chat")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == -signal.SIGKILL
    finished_before = stored_rows(checkpoint)
    assert 8 <= finished_before < ROWS
    first_run = chat_prompts(slow_standin)
    slow_standin.reset()

    frame = pd.DataFrame({"n": range(ROWS)})
    out = frame.ollama.chat("Item number {n}", checkpoint=str(checkpoint), progress=False)

    resent = chat_prompts(slow_standin)
    assert len(resent) == len(set(resent)) == ROWS - finished_before
    cached = out[out["status"] == "cached"]
    assert len(cached) == finished_before
    assert not {f"Item number {n}" for n in cached["n"]} & set(resent)  # no finished row re-sent
    assert {f"Item number {n}" for n in cached["n"]} <= set(first_run)
    assert out["status"].isin(["ok", "cached"]).all()
    assert out["response"].tolist() == [f'You said: "Item number {n}".' for n in range(ROWS)]
    assert stored_rows(checkpoint) == ROWS


def test_a_different_model_or_options_is_not_reused(
    runtime: Runtime, reviews: pd.DataFrame, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    checkpoint = str(tmp_path / "keys.sqlite")
    first = reviews.ollama.chat("{review}", checkpoint=checkpoint, progress=False)
    again = reviews.ollama.chat("{review}", checkpoint=checkpoint, progress=False)
    hotter = reviews.ollama.chat(
        "{review}", checkpoint=checkpoint, options={"temperature": 1.5}, progress=False
    )
    other_model = reviews.ollama.chat(
        "{review}", checkpoint=checkpoint, model="qwen3:0.6b", progress=False
    )
    assert first["status"].eq("ok").all() and again["status"].eq("cached").all()
    assert again["response"].tolist() == first["response"].tolist()
    assert hotter["status"].eq("ok").all() and other_model["status"].eq("ok").all()
    assert len(ollama_standin.requests("/api/chat")) == 12
    assert again.attrs[SUMMARY_KEY]["cached"] == 4


def test_failed_rows_are_not_checkpointed(
    runtime: Runtime, reviews: pd.DataFrame, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    checkpoint = str(tmp_path / "failed.sqlite")
    ollama_standin.inject("http_500", count=1, path="/api/chat")
    first = reviews.ollama.chat(
        "{review}", checkpoint=checkpoint, retries=0, concurrency=1, progress=False
    )
    assert first["status"].value_counts().to_dict() == {
        "ok": 3,
        "failed": 1,
        "cached": 0,
        "skipped": 0,
        "not run": 0,
    }
    second = reviews.ollama.chat("{review}", checkpoint=checkpoint, progress=False)
    assert second["status"].value_counts()[["ok", "cached"]].tolist() == [1, 3]


def test_interrupt_returns_partial_frame_and_resume_finishes(
    slow_standin: StandinHandle, slow_runtime: Runtime, tmp_path: Path
) -> None:
    checkpoint = str(tmp_path / "interrupt.sqlite")
    frame = pd.DataFrame({"n": range(ROWS)})
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread().ident == main
    four_done = threading.Event()
    finished: list[str] = []

    def count(event: RequestEvent) -> None:
        if event.status == "ok":
            finished.append(event.request_id)
            if len(finished) >= 4:
                four_done.set()

    unsubscribe = slow_runtime.recent.subscribe(count)

    def press_stop() -> None:
        four_done.wait()
        # From now on every request hangs: the batch can only come back if the
        # interrupt cancels the requests in flight instead of awaiting them.
        slow_standin.inject("stall", count=ROWS, path="/api/chat")
        signal.pthread_kill(main, signal.SIGINT)

    stopper = threading.Thread(target=press_stop, daemon=True)
    stopper.start()
    out = frame.ollama.chat("Item number {n}", checkpoint=checkpoint, progress=False)
    stopper.join()
    unsubscribe()

    counts = out["status"].value_counts()
    assert counts["ok"] >= 4 and counts["not run"] >= 10
    assert counts["ok"] + counts["not run"] == ROWS
    not_run = out[out["status"] == "not run"]
    assert not_run["error"].eq("not run: interrupted").all()
    assert out.attrs[SUMMARY_KEY]["stopped"] == "interrupted"
    done = out[out["status"] == "ok"]
    assert (done["response"] == [f'You said: "Item number {n}".' for n in done["n"]]).all()
    assert slow_runtime.gate.stats().running == 0
    assert any(e.status == "interrupted" for e in slow_runtime.recent.snapshot())

    slow_standin.reset()
    resumed = frame.ollama.chat("Item number {n}", checkpoint=checkpoint, progress=False)
    assert resumed["status"].value_counts()["cached"] == counts["ok"]
    assert len(chat_prompts(slow_standin)) == ROWS - counts["ok"]
    assert resumed["response"].tolist() == [f'You said: "Item number {n}".' for n in range(ROWS)]
