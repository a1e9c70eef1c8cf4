"""The product against every fault in one place; each test adds a row to the table.

Requests go through the public API (``ollama_nb.chat``) and the real runtime
to the stand-in over loopback HTTP; faults are armed on the stand-in the way a
real Ollama server produces them. Multi-process rows (kernel restart, racing
kernels, two metrics writers, a full disk) run real subprocesses, reusing the
workers of the batch, server and telemetry suites.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest

import ollama_nb
from ollama_nb.domain import (
    RequestTimeoutError,
    RunnerError,
    ServerUnavailableError,
    StreamError,
)
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing import StandinHandle
from ollama_nb.testing.pytest_plugin import StandinFactory

from .conftest import Table

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "one two three four five six seven eight nine ten"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def use_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Make the process runtime one pointed at ``url``; closed and restored afterwards."""
    monkeypatch.setenv("OLLAMA_NB_SERVER_AUTO_START", "0")  # faults, not our own server
    made: list[tuple[Runtime, Runtime | None]] = []

    def use(url: str, **settings: Any) -> Runtime:
        values: dict[str, Any] = {
            "host": url,
            "data_dir": tmp_path / "data",
            "default_model": "llama3.2",
            "retry_backoff_s": 0.0,
            **settings,
        }
        runtime = Runtime(load_settings(**values))
        made.append((runtime, set_runtime(runtime)))
        return runtime

    yield use
    for runtime, previous in reversed(made):
        runtime.close()
        set_runtime(previous)


@pytest.fixture
def standin(ollama_standin: StandinHandle) -> StandinHandle:
    ollama_standin.reset()
    return ollama_standin


def _chat_requests(standin: StandinHandle) -> int:
    return len(standin.requests("/api/chat"))


def _last_event(runtime: Runtime) -> Any:
    event = runtime.recent.last
    assert event is not None, "no request event was recorded"
    return event


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0]


# --- one request, one fault ----------------------------------------------------------------


def test_server_down(table: Table, use_runtime: Any) -> None:
    table.expect("server down", "ServerUnavailableError naming host + how to start; event kept")
    url = f"http://127.0.0.1:{_free_port()}"
    runtime = use_runtime(url, retry_attempts=1, connect_timeout_s=2.0)
    with pytest.raises(ServerUnavailableError) as caught:
        ollama_nb.chat("hello")
    message = _first_line(caught.value)
    assert url in message and "ollama serve" in str(caught.value)
    event = _last_event(runtime)
    assert event.status == "error" and event.prompt == "hello"
    table.saw(message[:70], "the prompt is in the error event (history)")


def test_http_500(table: Table, use_runtime: Any, standin: StandinHandle) -> None:
    table.expect("500 (runner crashed)", "RunnerError, not retried (a crash repeats)")
    runtime = use_runtime(standin.url)
    standin.inject("http_500", count=1)
    with pytest.raises(RunnerError) as caught:
        ollama_nb.chat("hello")
    assert _chat_requests(standin) == 1
    assert _last_event(runtime).status == "error"
    assert ollama_nb.chat("again").text  # the next request is fine
    table.saw(f"{_first_line(caught.value)[:50]}; 1 request sent", "next request answered")


def test_503_burst(table: Table, use_runtime: Any, standin: StandinHandle) -> None:
    table.expect("503 burst (queue full) x2", "retried with backoff; the answer arrives")
    runtime = use_runtime(standin.url, retry_attempts=3)
    standin.inject("http_503", count=2, path="/api/chat")
    result = ollama_nb.chat(PROMPT)
    assert PROMPT in result.text
    assert result.timings.retries == 2 and _chat_requests(standin) == 3
    assert _last_event(runtime).timings.retries == 2
    table.saw("answered after 2 retries (3 requests)", "full answer; retries in the event")


@pytest.mark.parametrize(
    ("fault", "label"),
    [("error_midstream", "mid-stream error line"), ("drop", "dropped connection")],
)
def test_stream_broken_midway_keeps_the_partial_answer(
    table: Table, use_runtime: Any, standin: StandinHandle, fault: str, label: str
) -> None:
    table.expect(label, "StreamError carrying the words that arrived")
    runtime = use_runtime(standin.url)
    standin.inject(fault, after=3, path="/api/chat")
    seen: list[str] = []
    with pytest.raises(StreamError) as caught:
        ollama_nb.chat(PROMPT, on_chunk=lambda chunk: seen.append(chunk.content))
    partial = caught.value.partial
    assert partial is not None and partial.text == "".join(seen) and len(seen) >= 3
    assert _last_event(runtime).status == "error"
    assert _chat_requests(standin) == 1  # a half-streamed answer is not silently re-asked
    table.saw(
        f"{type(caught.value).__name__}: {_first_line(caught.value)[:45]}",
        f"partial kept ({len(partial.text)} chars, {len(seen)} chunks)",
    )


def test_stall_past_the_read_timeout(
    table: Table, use_runtime: Any, standin: StandinHandle
) -> None:
    table.expect("stall past read timeout", "RequestTimeoutError after read_timeout_s")
    runtime = use_runtime(standin.url, read_timeout_s=0.5, retry_attempts=0)
    standin.inject("stall", path="/api/chat")
    with pytest.raises(RequestTimeoutError) as caught:
        ollama_nb.chat("hello")
    assert _last_event(runtime).status in ("error", "timeout")
    assert ollama_nb.chat("after the stall").text  # the pool was not poisoned
    table.saw(_first_line(caught.value)[:70], "next request answered")


def test_slow_cold_load(table: Table, use_runtime: Any, standin: StandinHandle) -> None:
    table.expect("slow cold load (0.5 s)", "waits for the load; load time recorded")
    runtime = use_runtime(standin.url, read_timeout_s=30.0)
    standin.inject("slow_load", seconds=0.5, path="/api/chat")
    result = ollama_nb.chat(PROMPT)
    assert PROMPT in result.text
    event = _last_event(runtime)
    assert event.status == "ok" and event.timings.load_s >= 0.5
    table.saw(f"answered; load_s={event.timings.load_s:.2f}", "full answer")


# --- processes ---------------------------------------------------------------------------


def test_kernel_restart_mid_batch(
    table: Table, use_runtime: Any, ollama_standin_factory: StandinFactory, tmp_path: Path
) -> None:
    from tests.batch.conftest import chat_prompts
    from tests.batch.test_resume import ROWS, WORKER, stored_rows

    table.expect("kernel killed mid-batch (SIGKILL)", "re-run resumes from the checkpoint")
    slow = ollama_standin_factory(num_parallel=2, tokens_per_second=40)
    checkpoint = tmp_path / "run.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        # The worker seals rows with the key in the data directory the re-run uses too.
        [
            sys.executable,
            "-c",
            WORKER,
            slow.url,
            str(checkpoint),
            str(ROWS),
            str(tmp_path / "data"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while stored_rows(checkpoint) < 8:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the worker never checkpointed 8 rows"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
    finished = stored_rows(checkpoint)
    slow.reset()
    use_runtime(slow.url, parallel=2, request_log=False)
    out = pd.DataFrame({"n": range(ROWS)}).ollama.chat(
        "Item number {n}", checkpoint=str(checkpoint), progress=False
    )
    resent = chat_prompts(slow)
    assert len(resent) == ROWS - finished
    assert out["response"].tolist() == [f'You said: "Item number {n}".' for n in range(ROWS)]
    table.saw(
        f"killed after {finished}/{ROWS} rows; re-run sent {len(resent)}",
        f"0 finished rows re-sent, {ROWS}/{ROWS} answers",
    )


def test_two_kernels_racing_to_start(
    table: Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.ollama_process.conftest import stop_recorded, write_executable
    from tests.ollama_process.test_lifecycle import run_kernel

    table.expect("two kernels start at once", "one server spawned, the other adopts it")
    folder = tmp_path / "bin"
    folder.mkdir()
    write_executable(
        folder / "ollama",
        f'PYTHONPATH="{ROOT}" exec "{sys.executable}" -m ollama_nb.testing.standin "$@"',
    )
    port = _free_port()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    try:
        kernels = [run_kernel(tmp_path, port, "linger") for _ in range(2)]
        # Each reports, then waits on its stdin, so both are alive at once.
        outputs = [k.stdout.readline().split() for k in kernels if k.stdout is not None]
        for kernel in kernels:
            kernel.communicate(timeout=90)
    finally:
        stop_recorded(tmp_path / "data")
    actions = sorted(o[0] for o in outputs)
    assert actions == ["adopted", "started"]
    assert outputs[0][1] == outputs[1][1]
    pid = int(outputs[0][1])
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    table.saw(f"{' + '.join(actions)}, same pid", "last kernel out stopped it; no orphan")


def test_two_processes_writing_metrics(table: Table, tmp_path: Path) -> None:
    from tests.telemetry.test_processes import (
        test_two_processes_lose_no_events_and_never_see_a_lock,
    )

    table.expect("two processes write metrics", "no event lost, no 'database is locked'")
    test_two_processes_lose_no_events_and_never_see_a_lock(tmp_path)  # asserts 600 + 600 rows
    table.saw("2 x 600 events, no lock error", "1200/1200 events and history rows")


DISK_FULL = textwrap.dedent(
    """
    import json, logging, resource, signal, sqlite3, sys, time
    from pathlib import Path
    from ollama_nb.domain import RequestEvent, Timings
    from ollama_nb.telemetry.store import TelemetryStore

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, EFBIG
    folder = Path(sys.argv[1])
    store = TelemetryStore(folder / "metrics.sqlite")

    def event(n):
        return RequestEvent(request_id=f"e{n}", started_at=time.time(), kind="chat",
                            model="llama3.2", host="h", status="ok", timings=Timings(),
                            prompt="p" * 2000, response="r" * 2000)

    for n in range(5):
        store.record(event(n))
    store.flush()
    size = max(p.stat().st_size for p in folder.iterdir())
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))  # the disk is full
    for n in range(5, 60):
        store.record(event(n))
        store.flush()
    failing = store.notice.failing
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    store.record(event(60))  # space was freed
    store.flush()
    store.close()
    with sqlite3.connect(folder / "metrics.sqlite") as db:
        ids = [r[0] for r in db.execute("SELECT request_id FROM events ORDER BY id")]
    print(json.dumps({"failing_while_full": failing, "ids": ids}))
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_disk_full_for_the_store(table: Table, tmp_path: Path) -> None:
    table.expect("disk full for the metrics store", "one warning, events held, saved later")
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)  # already private: no tightening notice among the lines counted
    proc = subprocess.run(
        [sys.executable, "-c", DISK_FULL, str(folder)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    warnings = [line for line in proc.stderr.splitlines() if line.strip()]
    assert result["failing_while_full"] is True  # the limit really made writes fail
    assert result["ids"] == [f"e{n}" for n in range(61)]
    assert len(warnings) == 2, warnings  # the failure once, the recovery once
    assert "cannot be written" in warnings[0] and "Free some disk space" in warnings[0]
    assert "Traceback" not in proc.stderr
    table.saw("1 warning while full, 1 when saving resumed", "61/61 events in the file")
