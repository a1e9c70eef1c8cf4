"""Dask batches on a LocalCluster: the issue's Dask rows, both cluster-bound designs, a
killed worker, and memory on a parquet-to-parquet run.

Stand-ins run in their own processes with their slots set only in *their*
environment (``OLLAMA_NUM_PARALLEL``), never in ours or the workers', as for a
user whose Ollama was started elsewhere. Every figure is measured on the path a
user runs: ``ddf.ollama.chat(...).compute()`` against a ``distributed.Client``.

Two designs of the cluster-wide bound are measured side by side:

* broker     what the package ships: the scheduler's slot broker
             (``ollama_nb.dask.broker``), default settings, slots unknown to the client;
* semaphore  FOR COMPARISON ONLY, defined in this file: a ``distributed.Semaphore``
             per host as the package had before, at its best: *told* each host's
             true slots (a client normally cannot know them).

* lease      one acquire + release round trip through a worker's gate, no request
             (``--leases`` sequential leases on one worker, median of ``--runs``)
* rate       rows per second over the whole compute, median of ``--runs``
* ideal      sum over hosts of slots x one slot's rate, where one slot's rate is the
             median single-request time of the official ``ollama`` client, measured
             on the same stand-in in the same run
* peak       most requests each stand-in had at once (running + waiting it reports),
             over all runs, the first (learning) run included; target: its slots + 1
* killed     one worker SIGKILLed a third of the way through a checkpointed run
* memory     short rows read from parquet, labelled and written back to parquet with
             a zero-latency stand-in; peak RSS of each worker against the in-memory
             size of one partition

    python bench/bench_dask.py --million 100000      # the issue's table
    python bench/bench_dask.py --rows 300 --runs 1 --leases 300 --million 20000

The memory case sends every row through the one-slot stand-in (about 100 rows/s
on the 2-core box, before and after the broker), so a full 1,000,000 rows takes
hours; 100,000 shows the same flat RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
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
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import ollama
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dask.dataframe as dd
from distributed import Client, LocalCluster, Semaphore, get_worker

import ollama_nb.dask  # noqa: F401  (registers ddf.ollama)
from ollama_nb.application.ports import Lane, Lease, Priority
from ollama_nb.dask import BrokeredGate, HostTerms, PartitionJob, cluster_leases, run_partition
from ollama_nb.infrastructure.clock import SystemClock
from ollama_nb.infrastructure.gate import SlotGate
from ollama_nb.runtime import Runtime, get_runtime, set_runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing.process import standin_process

MODEL = "llama3.2"
#: Rows in the killed-worker run: the stand-in's request log (which shows what was
#: re-sent) keeps the last 1,000 requests.
KILL_ROWS = 800
ROOT = Path(__file__).resolve().parents[1]
#: The issue's targets for the Dask rows.
TARGET_RATIO = 0.85
DESIGNS = ("broker", "semaphore")


# --- FOR COMPARISON ONLY: the Semaphore lease the package shipped before the broker ---------


class SemaphoreLeasedGate(SlotGate):
    """Benchmark-only: a worker's gate whose every slot also holds a ``distributed.Semaphore``
    lease named after the host, sized to slots it is *told* (the package's old design)."""

    def __init__(self, host: str, slots: int, *, vision_limit: int = 1) -> None:
        super().__init__(SystemClock(), limit=slots, vision_limit=vision_limit)
        self._semaphore = Semaphore(max_leases=slots, name=f"bench:{host}:{slots}")
        # Waiting for a lease blocks a thread (the semaphore's API is synchronous here).
        self._takers = ThreadPoolExecutor(slots, thread_name_prefix="bench-lease")
        self._giver = ThreadPoolExecutor(1, thread_name_prefix="bench-lease-return")

    def retune(self, known: int | None, *, adaptive: bool, ceiling: int, vision_limit: int) -> None:
        self.vision_limit = max(1, vision_limit)

    @asynccontextmanager
    async def slot(
        self,
        lane: Lane,
        *,
        model: str | None = None,
        priority: Priority = "interactive",
        concurrency: int | None = None,
    ) -> AsyncIterator[Lease]:
        async with super().slot(
            lane, model=model, priority=priority, concurrency=concurrency
        ) as lease:
            loop = asyncio.get_running_loop()
            taking = loop.run_in_executor(self._takers, self._semaphore.acquire)
            try:
                await asyncio.shield(taking)
            except asyncio.CancelledError:
                taking.add_done_callback(lambda t: t.result() and self._semaphore.release())
                raise
            try:
                yield lease
            finally:
                await asyncio.shield(loop.run_in_executor(self._giver, self._semaphore.release))


def _install_semaphores(settings: dict[str, object], slots: dict[str, int]) -> None:
    """On a worker (in a task thread, where a Semaphore finds its worker): the old gates."""
    runtime = get_runtime()
    changes = {k: v for k, v in settings.items() if getattr(runtime.settings, k) != v}
    if changes:
        runtime.configure(**changes)
    for host, n in slots.items():
        gate = runtime.pool.member(host).gate  # type: ignore[union-attr]
        if not isinstance(gate, SemaphoreLeasedGate):
            runtime.replace_gate(host, SemaphoreLeasedGate(host, n))


def semaphore_chat(client: Client, frame: dd.DataFrame, slots: dict[str, int]) -> dd.DataFrame:
    """``frame.ollama.chat("Label: {text}")`` with the old semaphore bound in place of the broker."""
    settings = get_runtime().settings.model_dump()
    for worker in client.scheduler_info()["workers"]:
        client.submit(_install_semaphores, settings, slots, workers=[worker], pure=False).result()
    meta = frame.ollama.chat("Label: {text}")._meta
    job = PartitionJob(
        kind="chat", what="Label: {text}", arguments={"model": MODEL}, settings=settings
    )
    return frame.map_partitions(run_partition, job, meta=meta)


# --- per-lease overhead -------------------------------------------------------------------


def _lease_round_trips(design: str, host: str, slots: int, n: int) -> float:
    """On a worker: seconds per acquire + release through this host's gate, no request."""
    runtime = get_runtime()
    if design == "broker":
        gate: SlotGate = BrokeredGate(HostTerms(host, known=slots), get_worker())
    else:
        gate = SemaphoreLeasedGate(host, slots)

    async def leases() -> float:
        for _ in range(20):  # connections opened, semaphore registered: off the clock
            async with gate.slot("text", priority="batch"):
                pass
        start = time.perf_counter()
        for _ in range(n):
            async with gate.slot("text", priority="batch"):
                pass
        return (time.perf_counter() - start) / n

    async def measure(_: object) -> float:
        return await leases()

    return runtime.run(measure)


def lease_overhead(args: argparse.Namespace, url: str) -> list[list[str]]:
    out = []
    with (
        LocalCluster(n_workers=2, threads_per_worker=2, dashboard_address=":0") as cl,
        Client(cl) as client,
    ):
        texts(8, 2).ollama.chat("Label: {text}").compute()  # registers the broker
        worker = next(iter(client.scheduler_info()["workers"]))
        for design in args.designs:
            times = [
                client.submit(
                    _lease_round_trips, design, url, 2, args.leases, workers=[worker], pure=False
                ).result()
                for _ in range(args.runs)
            ]
            out.append([design, f"{statistics.median(times) * 1000:.2f}", str(args.leases)])
    return out


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


def throughput(
    args: argparse.Namespace, urls: Sequence[str], slots: Sequence[int], ideal: float
) -> list[list[str]]:
    out = []
    for design, workers in itertools.product(args.designs, args.workers):
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
                if design == "broker":
                    lazy = frame.ollama.chat("Label: {text}")
                else:
                    lazy = semaphore_chat(client, frame, dict(zip(urls, slots, strict=True)))
                result = lazy.compute()
                rates.append(len(result) / (time.perf_counter() - start))
                print(
                    f"  {design}, {workers} workers, run {len(rates)}: {rates[-1] / ideal:.2f} of ideal"
                )
                assert (result["status"] == "ok").all(), result["status"].value_counts()
                peaks.append([stats(u)["max_in_flight_seen"] for u in urls])
            learned = {
                h.host: f"{h.controller.slots or '?'} (limit {h.limit})"
                for h in cluster_leases(client)
            }
            median = statistics.median(rates)
            worst_peak = [max(p[i] for p in peaks) for i in range(len(urls))]
            # Once learned (the broker keeps what it learned for the cluster's life).
            later = (
                " / ".join(str(max(p[i] for p in peaks[1:])) for i in range(len(urls)))
                if len(peaks) > 1
                else "-"
            )
            bounded = all(p <= n + 1 for p, n in zip(worst_peak, slots, strict=True))
            met = median / ideal >= TARGET_RATIO and bounded
            told = "told" if design == "semaphore" else "learned"
            out.append(
                [
                    design,
                    f"{workers} workers",
                    f"{median:.1f}",
                    f"{ideal:.1f}",
                    f"{median / ideal:.2f}",
                    " / ".join(f"{p} (<= {n + 1})" for p, n in zip(worst_peak, slots, strict=True)),
                    later,
                    f"{told} "
                    + " / ".join(
                        str(learned.get(u, n) if design == "broker" else n)
                        for u, n in zip(urls, slots, strict=True)
                    ),
                    "met" if met else "missed",
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
        leases_after = cluster_leases(client)
    prompts: Counter[str] = Counter()
    for url in urls:
        prompts.update(sent(url))
    twice = {p for p, n in prompts.items() if n > 1}
    finished_prompts_resent = len(twice & finished_at_kill)
    lost = rows - result.index.nunique()
    answered_twice = len(result) - result.index.nunique()
    held = sum(h.in_flight for h in leases_after)
    met = lost == 0 and answered_twice == 0 and finished_prompts_resent == 0 and held == 0
    return [
        str(lost),
        str(answered_twice),
        str(finished_prompts_resent),
        str(len(twice)),
        str(held),
        "met" if met else "missed",
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
    parser.add_argument("--designs", nargs="+", choices=DESIGNS, default=list(DESIGNS))
    parser.add_argument("--leases", type=int, default=2000, help="leases per overhead run")
    parser.add_argument("--million", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.pop("OLLAMA_NUM_PARALLEL", None)  # the client must learn the slots itself
    print(
        f"rows={args.rows} runs={args.runs} workers={args.workers} "
        f"slots per stand-in={args.slots} tps={args.tps} designs={args.designs}"
    )
    with ExitStack() as stack:
        urls = [stack.enter_context(standin(p, args.tps)) for p in args.slots]
        one = [one_slot_rate(u) for u in urls]
        ideal = sum(p * r for p, r in zip(args.slots, one, strict=True))
        print("one slot: " + ", ".join(f"{r:.1f} rows/s" for r in one))
        stack.enter_context(use_pool(urls, Path(tempfile.mkdtemp(prefix="bench-dask-"))))
        table(
            "per-lease overhead: acquire + release through one worker's gate, no request, "
            "2 workers, limit 2",
            ["design", "ms per lease (median)", "leases per run"],
            lease_overhead(args, urls[0]),
        )
        slots = " + ".join(map(str, args.slots))
        table(
            f"Dask, 2 hosts (slots {slots} unknown to the client), default settings, "
            f"median of {args.runs}; target ratio >= {TARGET_RATIO}, peak <= slots + 1",
            [
                "design",
                "cluster",
                "rows/s",
                "ideal",
                "ratio",
                "peak in flight per host",
                "peak after run 1",
                "slots",
                "target",
            ],
            throughput(args, urls, args.slots, ideal),
        )
        table(
            f"broker: a worker SIGKILLed a third of the way through a checkpointed run of "
            f"{KILL_ROWS} rows; target 0 lost, 0 answered twice",
            [
                "rows lost",
                "rows answered twice",
                "finished rows re-sent",
                "in-flight rows re-sent",
                "leases held after",
                "target",
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
