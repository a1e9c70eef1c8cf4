"""What collecting metrics costs a request. Two measurements in one run.

1. ``record()`` cost per event on the caller's thread: the metrics store (which only
   queues) next to the core's in-memory ``RecentEvents`` and JSON request log.
2. ``ollama_nb.chat()`` from the main thread against a stand-in in its own process,
   through three runtimes built the same way except for what they keep:

   - telemetry detached: ``Runtime(telemetry=False)`` with the request log off, so
     only the in-memory feed the widgets read sees the event;
   - request log only: the JSON line per request, no SQLite store;
   - everything on (the default): request log, SQLite store and history.

   Calls run in blocks of back-to-back requests per runtime, rotating, so the work a
   call leaves to the store's writer thread lands in its own runtime's figures.

    python bench/bench_telemetry.py [--events 20000] [--rounds 30]

Prints medians, p95, CPU time and ratios; nothing is asserted (timings belong here,
not in tests).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _standin_process import standin_process

import ollama_nb
from ollama_nb.domain import RequestEvent, Timings
from ollama_nb.infrastructure.event_sinks import JsonRequestLog, RecentEvents
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.settings import load_settings
from ollama_nb.telemetry import TelemetryStore

#: Back-to-back calls per runtime before the next one's turn.
BLOCK = 10


def _event(n: int) -> RequestEvent:
    return RequestEvent(
        request_id=f"bench{n}",
        started_at=time.time(),
        kind="chat",
        model="llama3.2:latest",
        host="http://127.0.0.1:11434",
        status="ok",
        timings=Timings(eval_count=50, eval_ns=10**9, latency_s=1.0, ttft_s=0.1),
        prompt="a prompt of ordinary length for a notebook question",
        response="an answer " * 40,
    )


def record_cost(sink: object, events: list[RequestEvent], rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean nanoseconds per ``record()`` call."""
    record = sink.record  # type: ignore[attr-defined]
    per_call = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for event in events:
            record(event)
        per_call.append((time.perf_counter_ns() - start) / len(events))
        flush = getattr(sink, "flush", None)
        if callable(flush):
            flush()  # drain between rounds so every round starts from an empty queue
    return statistics.median(per_call)


def bench_record(count: int, folder: Path) -> list[tuple[str, float]]:
    events = [_event(n) for n in range(count)]
    store = TelemetryStore(folder / "record.sqlite")
    log = JsonRequestLog(folder / "requests.log")
    try:
        return [
            ("RecentEvents (in memory)", record_cost(RecentEvents(maxlen=count), events)),
            ("JsonRequestLog (buffered append)", record_cost(log, events)),
            ("TelemetryStore (queue + thread)", record_cost(store, events)),
        ]
    finally:
        store.close()
        log.close()


def bench_requests(
    url: str, rounds: int, folder: Path
) -> tuple[dict[str, list[float]], dict[str, list[float]], int]:
    def runtime(name: str, *, request_log: bool, telemetry: bool) -> Runtime:
        settings = load_settings(
            host=url, data_dir=folder / name, request_log=request_log, retry_attempts=0
        )
        return Runtime(settings, telemetry=telemetry)

    runtimes = {
        "telemetry detached": runtime("detached", request_log=False, telemetry=False),
        "request log only": runtime("log", request_log=True, telemetry=False),
        "everything on (default)": runtime("default", request_log=True, telemetry=True),
    }
    wall: dict[str, list[float]] = {name: [] for name in runtimes}
    cpu: dict[str, list[float]] = {name: [] for name in runtimes}
    previous = set_runtime(None)
    n = 0

    def ask() -> None:
        nonlocal n
        n += 1
        ollama_nb.chat(f"question {n}", model="llama3.2")

    try:
        for rt in runtimes.values():  # warm each runtime's pool, loop and store
            set_runtime(rt)
            for _ in range(20):
                ask()
        names = list(runtimes)
        for round_no in range(rounds):
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                set_runtime(runtimes[name])
                for _ in range(BLOCK):
                    start, used = time.perf_counter(), time.process_time()
                    ask()
                    wall[name].append(time.perf_counter() - start)
                    cpu[name].append(time.process_time() - used)
        stored = runtimes["everything on (default)"]
        rows = len(ollama_nb.metrics(runtime=stored))
    finally:
        set_runtime(previous)
        for rt in runtimes.values():
            rt.close()
    return wall, cpu, rows


def _row(name: str, values: list[float], cpu: list[float], base: Callable[[], float]) -> str:
    median = statistics.median(values)
    p95 = sorted(values)[math.ceil(len(values) * 0.95) - 1]  # nearest rank
    return (
        f"{name:<26}{median * 1e3:>10.3f}{p95 * 1e3:>8.3f}"
        f"{statistics.fmean(cpu) * 1e3:>8.3f}{median / base():>12.3f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before: {load}, {os.cpu_count()} CPUs")
    print()
    with tempfile.TemporaryDirectory() as tmp, standin_process() as url:
        folder = Path(tmp)
        costs = bench_record(args.events, folder)
        print(f"record() cost per event, median of 5 rounds of {args.events} events")
        print(f"{'sink':<34}{'ns/event':>10}{'us/event':>10}")
        for name, ns in costs:
            print(f"{name:<34}{ns:>10.0f}{ns / 1000:>10.2f}")

        wall, cpu, rows = bench_requests(url, args.rounds, folder / "e2e")
    print()
    print(
        f"ollama_nb.chat() from the main thread, {args.rounds} rounds of {BLOCK} back-to-back "
        f"calls per runtime ({rows} rows reached the SQLite store)"
    )
    print(f"{'runtime':<26}{'median ms':>10}{'p95 ms':>8}{'CPU ms':>8}{'vs detached':>13}")
    detached = statistics.median(wall["telemetry detached"])
    for name, values in wall.items():
        print(_row(name, values, cpu[name], lambda: detached))
    print()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
