"""Two real processes writing one metrics file at the same time, as two kernels would."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

WRITER = textwrap.dedent(
    """
    import logging, sys, time
    from pathlib import Path
    from ollama_nb.domain import RequestEvent, Timings
    from ollama_nb.telemetry import TelemetryStore

    logging.basicConfig(level=logging.WARNING)
    path, name, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    store = TelemetryStore(path)
    print("ready", flush=True)
    sys.stdin.readline()  # the test's go: both writers start together
    for n in range(count):
        store.record(RequestEvent(
            request_id=f"{name}-{n}", started_at=time.time(), kind="chat",
            model="llama3.2:latest", host="http://127.0.0.1:11434", status="ok",
            timings=Timings(eval_count=10, eval_ns=10**9, latency_s=0.1),
            prompt=f"prompt {n}",
        ))
        if n % 50 == 0:
            store.flush()  # many small transactions: the most lock contention
    store.close()
    print("done", name)
    """
)


def test_two_processes_lose_no_events_and_never_see_a_lock(tmp_path: Path) -> None:
    path = tmp_path / "data" / "metrics.sqlite"
    count = 600
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("kernel-a", "kernel-b")
    ]
    for proc in procs:  # both interpreters up and waiting for the go
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err.lower() and "error" not in err.lower(), err
        assert out.startswith("done")
    with sqlite3.connect(path) as db:
        per_writer = dict(
            db.execute(
                "SELECT substr(request_id, 1, 8), count(DISTINCT request_id) FROM events GROUP BY 1"
            ).fetchall()
        )
        pids = db.execute("SELECT count(DISTINCT pid) FROM events").fetchone()[0]
        history = db.execute("SELECT count(*) FROM history").fetchone()[0]
    db.close()
    assert per_writer == {"kernel-a": count, "kernel-b": count}
    assert pids == 2
    assert history == 2 * count
