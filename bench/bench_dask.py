"""Dask batches on a LocalCluster: throughput against ideal, the cluster-wide bound, a killed
worker, and memory on a parquet-to-parquet run.

Stand-ins run in their own processes with their slots set only in *their*
environment (``OLLAMA_NUM_PARALLEL``), never in ours or the workers', as for a
user whose Ollama was started elsewhere. Every figure is measured on the path a
user runs: ``ddf.ollama.chat(...).compute()`` against a ``distributed.Client``.

* rate      rows per second over the whole compute, median of ``--runs``
* ideal     sum over hosts of slots x one slot's rate, where one slot's rate is the
            median single-request time of the official ``ollama`` client, measured
            on the same stand-in in the same run
* peak      most requests the stand-in had at once (running + waiting it reports)
* killed    one worker SIGKILLed a third of the way through a checkpointed run
* memory    1,000,000 short rows read from parquet, labelled and written back to
            parquet with a zero-latency stand-in; peak RSS of each worker against the
            in-memory size of one partition

    python bench/bench_dask.py                       # about 10 minutes on 2 cores
    python bench/bench_dask.py --rows 400 --runs 1 --million 100000
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import ollama
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dask.dataframe as dd
from distributed import Client, LocalCluster

import ollama_nb.dask  # noqa: F401  (registers ddf.ollama)
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing.process import standin_process

MODEL = "llama3.2"
#: Rows in the killed-worker run: the stand-in's request log (which shows what was
#: re-sent) keeps the last 1,000 requests.
KILL_ROWS = 800
ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def standin(slots: int, tokens_per_second: float) -> Iterator[str]:
    """A stand-in in its own process, its slots known only to itself (not inherited from us)."""
    env = {
        "OLLAMA_NUM_PARALLEL": str(slots),
        "OLLAMA_NB_STANDIN_TOKENS_PER_SECOND": str(tokens_per_second),
        "PYTHONPATH": str(ROOT),
    }
    with standin_process(env) as server:
        ollama.Client(host=server.url).generate(model=MODEL, prompt="warm")  # load off the clock
        yield server.url


def one_slot_rate(url: str, n: int = 15) -> float:
    """Rows per second one slot gives: the official client, one request at a time."""
    client = ollama.Client(host=url)
    times = []
    for i in range(n):
        start = time.perf_counter()
        client.chat(model=MODEL, messages=[{"role": "user", "content": f"Label: item {i}"}])
        times.append(time.perf_counter() - start)
    return 1.0 / statistics.median(times)


def stats(url: str) -> dict[str, int]:
    return dict(httpx.get(f"{url}/_standin/stats").json())


def reset(url: str) -> None:
    httpx.post(f"{url}/_standin/reset")
    ollama.Client(host=url).generate(model=MODEL, prompt="warm")


@contextmanager
def use_pool(urls: Sequence[str], data_dir: Path) -> Iterator[Runtime]:
    """This kernel's runtime pointed at the stand-ins (a pool when there are several)."""
    settings: dict[str, object] = {
        "default_model": MODEL,
        "request_log": False,
        "data_dir": data_dir,
        "host": urls[0],
    }
    if len(urls) > 1:
        settings["hosts"] = list(urls)
    runtime = Runtime(load_settings(**settings))
    previous = set_runtime(runtime)
    try:
        yield runtime
    finally:
        set_runtime(previous)
        runtime.close()


def texts(rows: int, partitions: int, distinct: int | None = None) -> dd.DataFrame:
    values = [f"item {i if distinct is None else i % distinct}" for i in range(rows)]
    return dd.from_pandas(pd.DataFrame({"text": values}), npartitions=partitions)


def throughput(args: argparse.Namespace, urls: Sequence[str], ideal: float) -> list[list[str]]:
    out = []
    for workers in args.workers:
        with (
            LocalCluster(n_workers=workers, threads_per_worker=2, dashboard_address=":0") as cl,
            Client(cl) as client,
        ):
            client.run(lambda: None)  # workers up before the clock starts
            rates, peaks = [], []
            for _ in range(args.runs):
                for url in urls:
                    reset(url)
                frame = texts(args.rows, workers * 4)
                start = time.perf_counter()
                result = frame.ollama.chat("Label: {text}").compute()
                rates.append(len(result) / (time.perf_counter() - start))
                assert (result["status"] == "ok").all(), result["status"].value_counts()
                peaks.append(
                    [stats(u)["max_running_seen"] + stats(u)["max_waiting_seen"] for u in urls]
                )
            median = statistics.median(rates)
            worst_peak = [max(p[i] for p in peaks) for i in range(len(urls))]
            out.append(
                [
                    f"{workers} workers",
                    f"{median:.1f}",
                    f"{ideal:.1f}",
                    f"{median / ideal:.2f}",
                    " / ".join(map(str, worst_peak)),
                ]
            )
    return out


def killed_worker(args: argparse.Namespace, urls: Sequence[str]) -> list[str]:
    rows = KILL_ROWS
    folder = Path(tempfile.mkdtemp(prefix="bench-dask-ckpt-"))
    for url in urls:
        reset(url)
    with (
        LocalCluster(n_workers=2, threads_per_worker=2, dashboard_address=":0") as cl,
        Client(cl) as client,
    ):
        future = client.compute(texts(rows, 8).ollama.chat("Label: {text}", checkpoint=str(folder)))
        tick = threading.Event()
        while sum(len(sent(u)) for u in urls) < rows // 3:
            tick.wait(0.05)
        victim = next(iter(client.run(os.getpid).values()))
        os.kill(victim, signal.SIGKILL)
        finished_at_kill = checkpointed(folder)
        result = future.result()
    prompts: Counter[str] = Counter()
    for url in urls:
        prompts.update(sent(url))
    twice = {p for p, n in prompts.items() if n > 1}
    finished_prompts_resent = len(twice & finished_at_kill)
    return [
        f"{len(result)} / {rows}",
        str(len(result) - result.index.nunique()),
        str(finished_prompts_resent),
        str(len(twice)),
    ]


def sent(url: str) -> list[str]:
    entries = httpx.get(f"{url}/_standin/requests", params={"path": "/api/chat"}).json()
    return [
        [m["content"] for m in e["body"]["messages"] if m["role"] == "user"][-1]
        for e in entries["requests"]
    ]


def checkpointed(folder: Path) -> set[str]:
    """The prompts of rows finished so far (read back from the partitions' checkpoints)."""
    import json

    done: set[str] = set()
    for path in folder.glob("*.sqlite"):
        with sqlite3.connect(path) as db:
            for (reply,) in db.execute("SELECT reply FROM rows"):
                text = json.loads(reply)["text"]
                done.add(text.split('"')[1] if '"' in text else text)
    return done


def memory(args: argparse.Namespace) -> list[list[str]]:
    folder = Path(tempfile.mkdtemp(prefix="bench-dask-parquet-"))
    partitions = 20
    texts(args.million, partitions, distinct=1000).to_parquet(folder / "in")
    part_mb = (
        pd.read_parquet(next((folder / "in").glob("*.parquet"))).memory_usage(deep=True).sum()
        / 2**20
    )
    out = []
    with (
        standin(1, 0.0) as url,
        use_pool([url], folder / "data"),
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cl,
        Client(cl) as client,
    ):
        base = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        start = time.perf_counter()
        dd.read_parquet(folder / "in").ollama.chat("Label: {text}").to_parquet(folder / "out")
        wall = time.perf_counter() - start
        peak = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    rows = len(dd.read_parquet(folder / "out"))
    for i, worker in enumerate(sorted(peak)):
        out.append(
            [
                f"worker {i + 1}",
                f"{base[worker] / 1024:.0f}",
                f"{peak[worker] / 1024:.0f}",
                f"{(peak[worker] - base[worker]) / 1024:.0f}",
                f"{part_mb:.1f}",
            ]
        )
    out.append([f"{rows:,} rows written in {wall:.1f} s", "", "", "", ""])
    return out


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--slots", type=int, nargs="+", default=[2, 4], help="one stand-in each")
    parser.add_argument("--tps", type=float, default=200.0, help="stand-in tokens per second")
    parser.add_argument("--million", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.pop("OLLAMA_NUM_PARALLEL", None)  # the client must learn the slots itself
    print(f"rows={args.rows} runs={args.runs} slots per stand-in={args.slots} tps={args.tps}")
    with ExitStack() as stack:
        urls = [stack.enter_context(standin(p, args.tps)) for p in args.slots]
        one = [one_slot_rate(u) for u in urls]
        ideal = sum(p * r for p, r in zip(args.slots, one, strict=True))
        print("one slot: " + ", ".join(f"{r:.1f} rows/s" for r in one))
        stack.enter_context(use_pool(urls, Path(tempfile.mkdtemp(prefix="bench-dask-"))))
        table(
            f"throughput, default concurrency (slots {' + '.join(map(str, args.slots))} unknown to the client)",
            ["cluster", "rows/s", "ideal", "ratio", "peak in flight per stand-in"],
            throughput(args, urls, ideal),
        )
        table(
            f"a worker SIGKILLed a third of the way through a checkpointed run of {KILL_ROWS} rows",
            [
                "rows back",
                "rows with two answers",
                "finished rows re-sent",
                "in-flight rows re-sent",
            ],
            [killed_worker(args, urls)],
        )
    table(
        f"memory: {args.million:,} short rows, parquet to parquet, 20 partitions, 1,000 distinct texts",
        ["", "RSS before MB", "peak RSS MB", "growth MB", "one partition MB"],
        memory(args),
    )


if __name__ == "__main__":
    main()
