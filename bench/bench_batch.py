"""Throughput and memory of ``df.ollama.chat`` against a stand-in with P parallel slots.

For P = 1, 2, 4, 8 the stand-in (its own process, so it does not share our GIL)
streams every reply at a fixed speed, giving each row the same generation time.
In the same run we measure:

* ours      ``df.ollama.chat`` with default concurrency (= the gate's P slots)
* ideal     P x the single-slot rate of the naive loop below
* naive     ``df.apply`` with the official ``ollama.Client`` (one row at a time)
* gather    ``asyncio.gather`` over every row with the official ``AsyncClient``
            (no bound): Ollama's queue overflows and answers 503

and the peak traced memory (tracemalloc) of a 100,000-row batch of short rows.
The memory run uses 1,000 distinct prompts so that it finishes in seconds: every
row still goes through rendering, hashing, fan-out and the result columns.

    python bench/bench_batch.py                  # about 4 minutes on 2 cores
    python bench/bench_batch.py --rows 200 --slots 1 2 --memory-rows 10000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ollama_nb.batch  # noqa: F401  (registers df.ollama)
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.settings import load_settings

MODEL = "llama3.2"
TEMPLATE = "Row {n}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def standin(slots: int, tokens_per_second: float) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_NUM_PARALLEL": str(slots),
        "OLLAMA_NB_STANDIN_TOKENS_PER_SECOND": str(tokens_per_second),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_nb.testing.standin", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/api/version", timeout=1.0)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        # Load the model once so no measurement pays for it.
        httpx.post(f"{url}/api/generate", json={"model": MODEL, "prompt": "warm", "stream": False})
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def frame(rows: int, distinct: int | None = None) -> pd.DataFrame:
    # Zero-padded numbers: every prompt and reply has the same token count.
    values = [f"{i % (distinct or rows):06d}" for i in range(rows)]
    return pd.DataFrame({"n": values})


def use_runtime(url: str, slots: int) -> Runtime:
    runtime = Runtime(
        load_settings(
            host=url, default_model=MODEL, parallel=slots, request_log=False, history=False
        )
    )
    set_runtime(runtime)
    return runtime


def ours(url: str, slots: int, rows: int) -> tuple[float, int]:
    runtime = use_runtime(url, slots)
    try:
        t0 = time.perf_counter()
        out = frame(rows).ollama.chat(TEMPLATE, progress=False)
        wall = time.perf_counter() - t0
    finally:
        runtime.close()
    lost = int((out["status"] != "ok").sum())
    return rows / wall, lost


def naive(url: str, rows: int) -> float:
    import ollama

    client = ollama.Client(host=url)
    df = frame(rows)
    t0 = time.perf_counter()
    df.apply(
        lambda r: client.chat(MODEL, messages=[{"role": "user", "content": f"Row {r['n']}"}])[
            "message"
        ]["content"],
        axis=1,
    )
    return rows / (time.perf_counter() - t0)


def gather(url: str, rows: int) -> tuple[float, int, int]:
    import ollama

    async def main() -> tuple[float, int, int]:
        client = ollama.AsyncClient(host=url, timeout=600)
        t0 = time.perf_counter()
        results = await asyncio.gather(
            *(
                client.chat(MODEL, messages=[{"role": "user", "content": f"Row {n}"}])
                for n in frame(rows)["n"]
            ),
            return_exceptions=True,
        )
        wall = time.perf_counter() - t0
        busy = sum(getattr(r, "status_code", None) == 503 for r in results)
        failed = sum(isinstance(r, BaseException) for r in results)
        return (rows - failed) / wall, busy, failed

    return asyncio.run(main())


def memory(url: str, slots: int, rows: int, distinct: int) -> tuple[float, float, float]:
    runtime = use_runtime(url, slots)
    try:
        df = frame(rows, distinct)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        out = df.ollama.chat(TEMPLATE, progress=False)
        wall = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        result_bytes = out.memory_usage(deep=True).sum() - df.memory_usage(deep=True).sum()
        assert (out["status"] == "ok").all()
    finally:
        runtime.close()
    return peak / 1e6, result_bytes / 1e6, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--naive-rows", type=int, default=150)
    parser.add_argument("--tokens-per-second", type=float, default=80.0)
    parser.add_argument("--memory-rows", type=int, default=100_000)
    parser.add_argument("--memory-distinct", type=int, default=1_000)
    args = parser.parse_args()

    print(
        f"rows={args.rows} reply=4 tokens at {args.tokens_per_second:g} tok/s "
        f"(~{4000 / args.tokens_per_second:.0f} ms per row); stand-in in its own process\n"
    )
    header = (
        f"{'P':>2} {'ours r/s':>9} {'ideal r/s':>9} {'ours/ideal':>10} {'lost':>5} "
        f"{'naive r/s':>9} {'gather r/s':>10} {'gather 503':>10} {'gather lost':>11}"
    )
    print(header)
    print("-" * len(header))
    ratios = []
    for slots in args.slots:
        with standin(slots, args.tokens_per_second) as url:
            single = naive(url, args.naive_rows)
            ideal = single * slots
            rate, lost = ours(url, slots, args.rows)
            g_rate, g_busy, g_failed = gather(url, args.rows)
        ratios.append(rate / ideal)
        print(
            f"{slots:>2} {rate:>9.1f} {ideal:>9.1f} {rate / ideal:>9.1%} {lost:>5} "
            f"{single:>9.1f} {g_rate:>10.1f} {g_busy:>10} {g_failed:>11}",
            flush=True,
        )
    print(f"\nmedian ours/ideal: {statistics.median(ratios):.1%}")

    with standin(8, 0.0) as url:
        peak, result, wall = memory(url, 8, args.memory_rows, args.memory_distinct)
    print(
        f"\nmemory: {args.memory_rows:,} rows ({args.memory_distinct:,} distinct prompts) in "
        f"{wall:.1f} s: tracemalloc peak {peak:.1f} MB, of which the result columns are "
        f"{result:.1f} MB ({peak * 1e6 / args.memory_rows:.0f} bytes/row in all)"
    )


if __name__ == "__main__":
    main()
