"""Client overhead per request: ollama_nb vs raw httpx vs the official ollama AsyncClient.

The stand-in runs in another process with no simulated latency, so what differs
between rows is the client's own work. Each round runs every client once, in a
rotating order, so drift on a shared machine hits all of them alike. Reported:
median and p95 per request, and each median relative to raw httpx (target for
ollama_nb: within 10 %). The last two rows show what metrics collection costs
(the full product path with the request log and in-memory feed vs no sinks).

    python bench/bench_client_overhead.py [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import ollama

sys.path.insert(0, str(Path(__file__).parent))
from _standin_process import standin_process

from ollama_nb.application import use_cases
from ollama_nb.application.ports import MetricsSink
from ollama_nb.domain import ChatMessage, ChatRequest, ModelName, RequestEvent
from ollama_nb.infrastructure.clock import SystemClock
from ollama_nb.infrastructure.event_sinks import FanOut, JsonRequestLog, RecentEvents
from ollama_nb.infrastructure.gate import SlotGate
from ollama_nb.infrastructure.http_gateway import HttpOllamaGateway

MODEL = "llama3.2"
PROMPT = "hello"


class NoSink:
    def record(self, event: RequestEvent) -> None:
        return None


async def main(requests: int) -> None:
    with standin_process() as url, tempfile.TemporaryDirectory() as data_dir:
        body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": False}
        raw = httpx.AsyncClient(base_url=url, timeout=60)
        official = ollama.AsyncClient(host=url)
        clock = SystemClock()
        gateway = HttpOllamaGateway(url, clock=clock)
        log = JsonRequestLog(Path(data_dir) / "requests.log")
        sinks: MetricsSink = FanOut([RecentEvents(), log])
        ports_full = use_cases.Ports(gateway, SlotGate(clock), sinks, clock)
        ports_bare = use_cases.Ports(gateway, SlotGate(clock), NoSink(), clock)
        request = ChatRequest(model=ModelName(MODEL), messages=(ChatMessage("user", PROMPT),))

        async def raw_httpx() -> None:
            response = await raw.post("/api/chat", json=body)
            response.raise_for_status()
            response.json()

        async def official_client() -> None:
            await official.chat(model=MODEL, messages=[{"role": "user", "content": PROMPT}])

        async def ours_full() -> None:
            await use_cases.complete(ports_full, request, stream=False)

        async def ours_bare() -> None:
            await use_cases.complete(ports_bare, request, stream=False)

        async def ours_streaming() -> None:
            await use_cases.complete(ports_full, request, stream=True)

        clients: dict[str, Callable[[], Awaitable[None]]] = {
            "raw httpx": raw_httpx,
            "ollama AsyncClient": official_client,
            "ollama_nb (metrics on)": ours_full,
            "ollama_nb (no sinks)": ours_bare,
            "ollama_nb streaming": ours_streaming,
        }
        samples: dict[str, list[float]] = {name: [] for name in clients}
        names = list(clients)
        for _ in range(30):  # warm-up: connections, imports, JIT-free but cache-warm
            for name in names:
                await clients[name]()
        for round_no in range(requests):
            order = names[round_no % len(names) :] + names[: round_no % len(names)]
            for name in order:
                start = time.perf_counter()
                await clients[name]()
                samples[name].append(time.perf_counter() - start)
        await raw.aclose()
        await gateway.aclose()
        log.close()

    base = statistics.median(samples["raw httpx"])
    print(f"{requests} requests per client, stand-in in a separate process, zero simulated latency")
    print(f"{'client':<26}{'median ms':>11}{'p95 ms':>9}{'vs raw httpx':>14}")
    for name, values in samples.items():
        values.sort()
        median = statistics.median(values)
        p95 = values[int(len(values) * 0.95) - 1]
        print(f"{name:<26}{median * 1e3:>11.3f}{p95 * 1e3:>9.3f}{median / base:>13.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    asyncio.run(main(parser.parse_args().requests))
