"""Fixtures: a runtime pointed at the stand-in with its own data dir, and hand-made events."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ollama_nb.domain import RequestEvent, Timings
from ollama_nb.runtime import Runtime
from ollama_nb.telemetry import Retention, TelemetryStore
from ollama_nb.telemetry.queries import load_events
from ollama_nb.testing.pytest_plugin import RuntimeFactory
from ollama_nb.testing.standin import StandinHandle

NS = 1_000_000_000


def make_event(
    n: int = 0,
    *,
    model: str = "llama3.2:latest",
    kind: str = "chat",
    status: str = "ok",
    started_at: float | None = None,
    project: str | None = "tests",
    prompt: str | None = None,
    response: str | None = None,
    **timings: Any,
) -> RequestEvent:
    return RequestEvent(
        request_id=f"req{n:06d}",
        started_at=time.time() - 60 if started_at is None else started_at,
        kind=kind,  # type: ignore[arg-type]
        model=model,
        host="http://127.0.0.1:11434",
        status=status,  # type: ignore[arg-type]
        timings=Timings(**timings),
        error_type="StreamError" if status == "error" else None,
        project=project,
        prompt=prompt,
        response=response,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TelemetryStore]:
    made = TelemetryStore(tmp_path / "data" / "metrics.sqlite")
    try:
        yield made
    finally:
        made.close()


#: No retries, a short connect timeout and a project name: what these tests read back.
TEST_SETTINGS: dict[str, Any] = {
    "retry_attempts": 0,
    "connect_timeout_s": 2.0,
    "project": "telemetry-tests",
}


@pytest.fixture
def runtime(
    ollama_standin: StandinHandle, ollama_runtime_factory: RuntimeFactory, tmp_path: Path
) -> Runtime:
    """The process runtime against the stand-in, with its metrics store attached."""
    made = ollama_runtime_factory(ollama_standin.url, data_dir=tmp_path / "data", **TEST_SETTINGS)
    assert made.telemetry in made._extra_sinks
    return made  # closing it (the plugin does) closes the store too


# --- the hand-computed fixture for report numbers and charts ---------------------

DAY1 = dt.datetime(2024, 5, 1, 10, 0).astimezone().timestamp()
DAY2 = dt.datetime(2024, 5, 2, 15, 0).astimezone().timestamp()


def fixture_events(store: TelemetryStore) -> None:
    """llama3.2: four successes and one error; an embedder; a pull.

    llama3.2 ok rows (latency, ttft, decode tok/s, prompt tok/s, load s):
      1.0 0.2  50 200 3.00 (cold)   project alpha, day 1
      2.0 0.4  30 100 0.01          project alpha, day 1
      3.0 0.6  40 100 0.01          project alpha, day 2
      4.0 0.8  20 150 1.00 (cold)   project beta,  day 2
    """
    llama = "llama3.2"
    rows = [
        (DAY1, "alpha", dict(latency_s=1.0, ttft_s=0.2, eval_count=100, eval_ns=2 * NS,
                             prompt_eval_count=20, prompt_eval_ns=NS // 10, load_ns=3 * NS)),
        (DAY1 + 60, "alpha", dict(latency_s=2.0, ttft_s=0.4, eval_count=60, eval_ns=2 * NS,
                                  prompt_eval_count=40, prompt_eval_ns=4 * NS // 10, load_ns=NS // 100)),
        (DAY2, "alpha", dict(latency_s=3.0, ttft_s=0.6, eval_count=40, eval_ns=NS,
                             prompt_eval_count=10, prompt_eval_ns=NS // 10, load_ns=NS // 100)),
    ]  # fmt: skip
    for n, (ts, project, timings) in enumerate(rows):
        store.record(make_event(n, model=llama, started_at=ts, project=project, **timings))
    store.record(
        make_event(
            3, model=llama, kind="generate", started_at=DAY2 + 60, project="beta",
            latency_s=4.0, ttft_s=0.8, eval_count=80, eval_ns=4 * NS,
            prompt_eval_count=30, prompt_eval_ns=2 * NS // 10, load_ns=NS,
        )
    )  # fmt: skip
    store.record(make_event(4, model=llama, status="error", started_at=DAY2 + 120, project="beta"))
    store.record(
        make_event(
            5, model="nomic-embed-text", kind="embed", started_at=DAY2 + 180, project="beta",
            latency_s=0.5, prompt_eval_count=8,
        )
    )  # fmt: skip
    store.record(
        make_event(6, model="moondream", kind="pull", started_at=DAY2 + 240, latency_s=30.0)
    )


@pytest.fixture
def frame(tmp_path: Path) -> Iterator[pd.DataFrame]:
    store = TelemetryStore(tmp_path / "m.sqlite", retention=Retention(max_age_days=None))
    fixture_events(store)
    try:
        yield load_events(store, now=DAY2 + 3600)
    finally:
        store.close()
