"""Per-request cost of ollama_nb on the paths a user runs, next to raw httpx and ``ollama``.

One run, one stand-in server in its own process (no simulated latency, so what
differs between rows is the client's own work), and ollama_nb exactly as a user
gets it: the process-wide runtime built from the environment, with telemetry
(SQLite), the JSON request log and history on, as they are by default.

Single requests, each row called from the main thread as a notebook cell would:

- raw ``httpx`` (sync and async; non-streamed and streamed, NDJSON parsed);
- the official ``ollama`` client (``Client`` and ``AsyncClient``; streamed and not);
- ``ollama_nb.chat()`` (streams by default, so its peer is the official streamed call);
- ``await ollama_nb.achat()`` from a cell's event loop (peer: ``AsyncClient`` streamed);
- ``%%chat --new`` through a real IPython ``InteractiveShell`` with the extension
  loaded (the stream view renders; its output is captured, not printed);
- the floor of the design: raw ``httpx.AsyncClient`` streamed on a background loop
  thread through the same ``LoopThread`` bridge, from the main thread and awaited
  from a cell's loop. ollama_nb cannot be cheaper than this; the gap between it
  and ``ollama_nb`` is ollama_nb's own work.

Every round calls each row ``BLOCK`` times back to back, rows in a rotating
order, so drift on a shared machine hits all rows alike and background work a
call leaves behind is billed to its own row. Async rows run on one persistent event loop
(``run_until_complete`` per call, as ipykernel runs an async cell).

Batches: ``df.ollama.chat`` over a frame next to the official ``AsyncClient`` and
raw ``httpx`` running the same rows with the same concurrency, interleaved.

Prints medians, p95 and ratios; nothing is asserted.

Targets: ``ollama_nb.chat()`` streamed <= 1.3x the official ``Client`` streamed, and
``await ollama_nb.achat()`` <= 1.1x the official ``AsyncClient`` streamed. The sync
target has a floor the rows show: ``ollama.Client`` runs on the calling thread, while
every synchronous ollama_nb call hops to the one loop thread and back (the price of
one shared client, gate and pool per process). The "loop thread" row is that hop
with nothing of ours in it; on a loaded machine each cross-thread wake-up costs
milliseconds, so compare ``ollama_nb.chat()`` with that row (the printed "own work on
top of it") as well as with the official client.

    python bench/bench_client_overhead.py [--rounds 40] [--rows 64] [--batches 15]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import redirect_stdout
from pathlib import Path

import httpx
import ollama

sys.path.insert(0, str(Path(__file__).parent))
from _standin_process import standin_process

from ollama_nb.infrastructure.loop_thread import LoopThread

MODEL = "llama3.2"
PROMPT = "hello"
MESSAGES = [{"role": "user", "content": PROMPT}]
#: Parallel slots of the stand-in and concurrency of every batch row.
PARALLEL = 4
#: Calls in a row per client before the next client's turn. Back-to-back calls, as in
#: a loop over questions, bill work a call leaves to background threads (telemetry
#: writes, log flushes) to that client; alternating single calls would hide it in
#: the next client's idle time.
BLOCK = 10

Sync = Callable[[], object]
Async = Callable[[], Awaitable[object]]


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(len(ordered) * 0.95) - 1]  # nearest rank


def _table(
    title: str,
    samples: dict[str, list[float]],
    cpu: dict[str, list[float]],
    peers: dict[str, str],
) -> None:
    """Wall time (median, p95) and this process's CPU time (all threads, mean) per call."""
    print(title)
    print(f"{'path':<42}{'median ms':>10}{'p95 ms':>8}{'CPU ms':>8}  {'median vs':<34}")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, values in samples.items():
        peer = peers.get(name)
        ratio = f"{medians[name] / medians[peer]:.2f}x {peer}" if peer else ""
        print(
            f"{name:<42}{medians[name] * 1e3:>10.3f}{_p95(values) * 1e3:>8.3f}"
            f"{statistics.fmean(cpu[name]) * 1e3:>8.3f}  {ratio}"
        )
    print()


def _measure(
    rows: dict[str, Sync], rounds: int, block: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """``block`` calls in a row per client, clients in a rotating order, ``rounds`` times."""
    samples: dict[str, list[float]] = {name: [] for name in rows}
    cpu: dict[str, list[float]] = {name: [] for name in rows}
    names = list(rows)
    wall, work = time.perf_counter, time.process_time
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            fn = rows[name]
            for _ in range(block):
                start, used = wall(), work()
                fn()
                samples[name].append(wall() - start)
                cpu[name].append(work() - used)
    return samples, cpu


async def _make_async_client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=60)


def single_requests(url: str, rounds: int) -> None:
    import ollama_nb

    body = {"model": MODEL, "messages": MESSAGES, "stream": False}
    streamed_body = {**body, "stream": True}
    raw = httpx.Client(base_url=url, timeout=60)
    araw = httpx.AsyncClient(base_url=url, timeout=60)
    official = ollama.Client(host=url)
    aofficial = ollama.AsyncClient(host=url)
    loop = asyncio.new_event_loop()

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("ollama_nb")

    def raw_sync() -> object:
        response = raw.post("/api/chat", json=body)
        response.raise_for_status()
        return response.json()["message"]["content"]

    def raw_sync_streamed() -> object:
        with raw.stream("POST", "/api/chat", json=streamed_body) as response:
            response.raise_for_status()
            return "".join(
                json.loads(line)["message"]["content"] for line in response.iter_lines() if line
            )

    async def raw_async() -> object:
        response = await araw.post("/api/chat", json=body)
        response.raise_for_status()
        return response.json()["message"]["content"]

    async def raw_async_streamed() -> object:
        async with araw.stream("POST", "/api/chat", json=streamed_body) as response:
            response.raise_for_status()
            parts = [
                json.loads(line)["message"]["content"]
                async for line in response.aiter_lines()
                if line
            ]
            return "".join(parts)

    def official_sync() -> object:
        return official.chat(model=MODEL, messages=MESSAGES).message.content

    def official_sync_streamed() -> object:
        return "".join(
            part.message.content or ""
            for part in official.chat(model=MODEL, messages=MESSAGES, stream=True)
        )

    async def official_async() -> object:
        return (await aofficial.chat(model=MODEL, messages=MESSAGES)).message.content

    async def official_async_streamed() -> object:
        parts = [
            part.message.content or ""
            async for part in await aofficial.chat(model=MODEL, messages=MESSAGES, stream=True)
        ]
        return "".join(parts)

    def ours_chat() -> object:
        return ollama_nb.chat(PROMPT, model=MODEL).text

    async def ours_achat() -> object:
        return (await ollama_nb.achat(PROMPT, model=MODEL)).text

    sink = io.StringIO()

    def ours_magic() -> object:
        with redirect_stdout(sink):
            reply = shell.run_cell_magic("chat", f"--new -m {MODEL}", PROMPT)
        sink.seek(0)
        sink.truncate()
        return reply

    # The floor of ollama_nb's design: the same streamed httpx call on a background
    # loop thread, from the main thread (sync) or a cell's loop (async) through the
    # same bridge ollama_nb uses, with nothing of ollama_nb around it.
    bridge = LoopThread("bench-floor")
    floor_client = bridge.run(_make_async_client(url))

    async def floor_streamed() -> object:
        async with floor_client.stream("POST", "/api/chat", json=streamed_body) as response:
            response.raise_for_status()
            parts = [
                json.loads(line)["message"]["content"]
                async for line in response.aiter_lines()
                if line
            ]
            return "".join(parts)

    def floor() -> object:
        return bridge.run(floor_streamed())

    async def afloor() -> object:
        return await bridge.arun(floor_streamed())

    def on_loop(fn: Async) -> Sync:
        return lambda: loop.run_until_complete(fn())

    rows: dict[str, Sync] = {
        "httpx.Client, not streamed": raw_sync,
        "httpx.Client, streamed": raw_sync_streamed,
        "ollama.Client, not streamed": official_sync,
        "ollama.Client, streamed": official_sync_streamed,
        "httpx.AsyncClient, streamed, loop thread": floor,
        "ollama_nb.chat()": ours_chat,
        "%%chat --new (InteractiveShell)": ours_magic,
        "httpx.AsyncClient, not streamed": on_loop(raw_async),
        "httpx.AsyncClient, streamed": on_loop(raw_async_streamed),
        "ollama.AsyncClient, not streamed": on_loop(official_async),
        "ollama.AsyncClient, streamed": on_loop(official_async_streamed),
        "httpx.AsyncClient, streamed, awaited loop": on_loop(afloor),
        "await ollama_nb.achat()": on_loop(ours_achat),
    }
    answers = {name: fn() for name, fn in rows.items()}  # also warms pools, model and imports
    texts = {a for a in answers.values() if isinstance(a, str)}
    assert len(texts) == 1, f"the clients got different answers: {answers}"
    for _ in range(20):
        for fn in rows.values():
            fn()
    samples, cpu = _measure(rows, rounds, BLOCK)

    raw.close()
    bridge.run(floor_client.aclose())
    bridge.stop()
    loop.run_until_complete(araw.aclose())
    loop.close()

    peers = {
        "ollama_nb.chat()": "ollama.Client, streamed",
        "%%chat --new (InteractiveShell)": "ollama.Client, streamed",
        "await ollama_nb.achat()": "ollama.AsyncClient, streamed",
        "ollama.Client, not streamed": "httpx.Client, not streamed",
        "ollama.Client, streamed": "httpx.Client, streamed",
        "httpx.AsyncClient, streamed, loop thread": "ollama.Client, streamed",
        "httpx.AsyncClient, streamed, awaited loop": "ollama.AsyncClient, streamed",
        "ollama.AsyncClient, not streamed": "httpx.AsyncClient, not streamed",
        "ollama.AsyncClient, streamed": "httpx.AsyncClient, streamed",
    }
    _table(
        f"Single requests from the main thread: {rounds} rounds of {BLOCK} calls per row, "
        f"rotating order, reply of {len(next(iter(texts)))} chars",
        samples,
        cpu,
        peers,
    )
    print("Targets (telemetry, request log and history on): ollama_nb.chat() <= 1.3x and")
    print("await ollama_nb.achat() <= 1.10x the official client's streamed call.")
    checks = [
        ("ollama_nb.chat()", "ollama.Client, streamed", "httpx.AsyncClient, streamed, loop thread"),
        (
            "await ollama_nb.achat()",
            "ollama.AsyncClient, streamed",
            "httpx.AsyncClient, streamed, awaited loop",
        ),
    ]
    for ours, official, floor in checks:
        median = {n: statistics.median(samples[n]) for n in (ours, official, floor)}
        work = {n: statistics.fmean(cpu[n]) for n in (ours, official, floor)}
        print(
            f"  {ours}: {median[ours] / median[official]:.2f}x {official}; the design's floor "
            f"is {median[floor] / median[official]:.2f}x; ollama_nb's own work on top of it: "
            f"{(median[ours] - median[floor]) * 1e3:+.3f} ms wall, "
            f"{(work[ours] - work[floor]) * 1e3:+.3f} ms CPU per call"
        )
    print()


def batches(url: str, rows: int, repeats: int) -> None:
    import pandas as pd

    import ollama_nb  # noqa: F401  (registers df.ollama)

    frame = pd.DataFrame({"word": [f"word{n}" for n in range(rows)]})
    prompts = [f"Say {word}" for word in frame["word"]]
    loop = asyncio.new_event_loop()
    araw = httpx.AsyncClient(base_url=url, timeout=60)
    aofficial = ollama.AsyncClient(host=url)

    async def gathered(ask: Callable[[str], Awaitable[object]]) -> None:
        gate = asyncio.Semaphore(PARALLEL)

        async def one(prompt: str) -> object:
            async with gate:
                return await ask(prompt)

        await asyncio.gather(*(one(p) for p in prompts))

    async def raw_row(prompt: str) -> object:
        response = await araw.post(
            "/api/chat",
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": prompt}],
                "stream": False,
            },
        )
        response.raise_for_status()
        return response.json()

    async def official_row(prompt: str) -> object:
        return await aofficial.chat(model=MODEL, messages=[{"role": "user", "content": prompt}])

    def ours() -> None:
        out = frame.ollama.chat("Say {word}", model=MODEL, concurrency=PARALLEL, progress=False)
        assert (out["status"] == "ok").all()

    runs: dict[str, Sync] = {
        "httpx.AsyncClient + gather": lambda: loop.run_until_complete(gathered(raw_row)),
        "ollama.AsyncClient + gather": lambda: loop.run_until_complete(gathered(official_row)),
        "df.ollama.chat": ours,
    }
    for fn in runs.values():
        fn()
    samples, cpu = _measure(runs, repeats, 1)
    for values in (*samples.values(), *cpu.values()):
        values[:] = [value / rows for value in values]
    loop.run_until_complete(araw.aclose())
    loop.close()
    _table(
        f"Batches of {rows} rows, concurrency {PARALLEL} (server slots {PARALLEL}), "
        f"{repeats} runs each, time per row",
        samples,
        cpu,
        {"df.ollama.chat": "ollama.AsyncClient + gather"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batches", type=int, default=15)
    args = parser.parse_args()
    with (
        standin_process({"OLLAMA_NUM_PARALLEL": str(PARALLEL)}) as url,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        # The user's runtime, built from the environment on first use.
        os.environ["OLLAMA_HOST"] = url
        os.environ["OLLAMA_NB_DATA_DIR"] = data_dir
        os.environ["OLLAMA_NB_PARALLEL"] = str(PARALLEL)
        print(
            f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs"
        )
        print()
        single_requests(url, args.rounds)
        batches(url, args.rows, args.batches)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
