"""Does collecting metrics slow requests? Two measurements in one run.

1. ``record()`` cost per event on the caller's thread: the metrics store (which only
   enqueues) next to the core's in-memory ``RecentEvents`` and JSON request log.
2. End-to-end ``ollama_nb.chat`` latency against the stand-in with and without the
   store attached, interleaved (A, B, A, B, ...) so load on the machine hits both alike.

    python bench/bench_telemetry.py [--events 20000] [--requests 150]

Prints medians and ratios; nothing is asserted (timings belong here, not in tests).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ollama_nb
from ollama_nb.domain import RequestEvent, Timings
from ollama_nb.infrastructure.event_sinks import JsonRequestLog, RecentEvents
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.settings import load_settings
from ollama_nb.telemetry import TelemetryStore
from ollama_nb.testing.standin import StandinConfig, StandinServer


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
            ("JsonRequestLog (queue + thread)", record_cost(log, events)),
            ("TelemetryStore (queue + thread)", record_cost(store, events)),
        ]
    finally:
        store.close()
        log.close()


def bench_requests(count: int, folder: Path) -> dict[str, list[float]]:
    server = StandinServer(StandinConfig()).start()
    runtime = Runtime(
        load_settings(host=server.url, data_dir=folder, request_log=False, retry_attempts=0)
    )
    previous = set_runtime(runtime)
    timings: dict[str, list[float]] = {"without store": [], "with store": []}
    try:
        store = TelemetryStore(folder / "metrics.sqlite")
        for _ in range(10):  # warm the connection pool and the model
            ollama_nb.chat("warm up", model="llama3.2")
        for n in range(2 * count):
            attached = n % 2 == 1
            remove = runtime.add_sink(store) if attached else None
            start = time.perf_counter()
            ollama_nb.chat(f"question {n}", model="llama3.2")
            elapsed = time.perf_counter() - start
            if remove is not None:
                remove()
            timings["with store" if attached else "without store"].append(elapsed)
        store.close()
    finally:
        set_runtime(previous)
        runtime.close()
        server.stop()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        costs = bench_record(args.events, folder)
        print(f"record() cost per event, median of 5 rounds of {args.events} events")
        print(f"{'sink':<34}{'ns/event':>10}{'us/event':>10}")
        for name, ns in costs:
            print(f"{name:<34}{ns:>10.0f}{ns / 1000:>10.2f}")

        timings = bench_requests(args.requests, folder / "e2e")
        base = statistics.median(timings["without store"])
        print()
        print(f"ollama_nb.chat against the stand-in, {args.requests} requests each, interleaved")
        print(f"{'':<16}{'median ms':>11}{'p95 ms':>9}{'vs without':>12}")
        for name, values in timings.items():
            median = statistics.median(values)
            p95 = statistics.quantiles(values, n=20)[-1]
            print(f"{name:<16}{median * 1000:>11.2f}{p95 * 1000:>9.2f}{median / base:>11.3f}x")


if __name__ == "__main__":
    main()
