"""``ddf.ollama`` on a two-process LocalCluster against the stand-in over loopback."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import dask
import dask.dataframe as dd
import pandas as pd
import pytest
from distributed import Client, Scheduler

from ollama_nb import metrics
from ollama_nb.domain import InvalidInputError
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.testing import StandinHandle
from ollama_nb.testing.pytest_plugin import StandinFactory

from .conftest import make_runtime

pytestmark = pytest.mark.concurrency

SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["label", "score"],
}


def frame(rows: int, partitions: int) -> dd.DataFrame:
    texts = pd.DataFrame({"text": [f"item {i}" for i in range(rows)]})
    return dd.from_pandas(texts, npartitions=partitions)


def sent_prompts(standin: StandinHandle) -> Counter[str]:
    sent: Counter[str] = Counter()
    for entry in standin.requests("/api/chat"):
        users = [m["content"] for m in entry["body"]["messages"] if m["role"] == "user"]
        sent[users[-1]] += 1
    return sent


def wait_for(condition: object, timeout_s: float = 60.0) -> None:
    """Wait until ``condition()`` holds, checking on a short event wait, failing at the timeout."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        tick.wait(0.05)


def test_meta_is_the_real_result_schema_columns_included(
    runtime: Runtime, client: Client, ollama_standin: StandinHandle
) -> None:
    lazy = frame(12, 3).ollama.chat("Rate: {text}", schema=SCHEMA)
    assert ollama_standin.requests("/api/chat") == []  # building the graph sends nothing
    result = lazy.compute()
    assert list(lazy.columns) == list(result.columns)
    assert dict(lazy.dtypes) == dict(result.dtypes)
    assert {"label", "score"} <= set(result.columns)
    assert (result["status"] == "ok").all()
    assert len(result) == 12 and result.index.is_unique


def test_template_errors_are_raised_when_the_graph_is_built(runtime: Runtime) -> None:
    with pytest.raises(InvalidInputError, match="missing"):
        frame(4, 2).ollama.chat("Rate: {missing}")


def test_requests_in_flight_are_bounded_cluster_wide(
    ollama_standin_factory: StandinFactory, client: Client, tmp_path: Path
) -> None:
    standin = ollama_standin_factory(num_parallel=2, tokens_per_second=400.0)
    rt = make_runtime(standin.url, tmp_path)
    previous = set_runtime(rt)
    try:
        # 2 workers x 2 threads run 4 partitions at once, each wanting 2 requests in flight.
        result = frame(48, 8).ollama.chat("Rate: {text}", concurrency=2).compute()
    finally:
        set_runtime(previous)
        rt.close()
    stats = standin.stats()
    assert (result["status"] == "ok").all()
    assert 1 <= stats["max_running_seen"] <= 2
    # Unbounded, 4 partitions x 2 would queue up to 6. One may show as waiting for an
    # instant: the server frees its slot just after the client has read the last line.
    assert stats["max_waiting_seen"] <= 1


def test_each_server_of_a_pool_is_bounded_cluster_wide(
    ollama_standin_factory: StandinFactory, client: Client, tmp_path: Path
) -> None:
    small = ollama_standin_factory(num_parallel=1, tokens_per_second=400.0)
    large = ollama_standin_factory(num_parallel=2, tokens_per_second=400.0)
    rt = make_runtime(small.url, tmp_path)
    rt.configure(hosts=[small.url, large.url])
    previous = set_runtime(rt)
    try:
        # 4 partitions at once, each wanting every server's slots: concurrency 2 is 1 per server.
        result = frame(48, 8).ollama.chat("Rate: {text}", concurrency=2).compute()
    finally:
        set_runtime(previous)
        rt.close()
    assert (result["status"] == "ok").all()
    assert set(result["host"]) <= {small.url, large.url}
    for standin in (small, large):
        stats = standin.stats()
        assert stats["max_running_seen"] == 1
        assert stats["max_waiting_seen"] <= 1  # as above: unbounded it would be up to 7


def test_a_rerun_sends_no_finished_row(
    runtime: Runtime, client: Client, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    lazy = frame(20, 4).ollama.chat("Rate: {text}", checkpoint=str(tmp_path / "run"))
    first = lazy.compute()
    # Every row was asked (a task Dask re-ran on a busy machine may ask a row twice).
    sent_first = sent_prompts(ollama_standin)
    assert len(sent_first) == 20
    # Until the scheduler has released the first run's results (a message that is late on
    # a busy machine), computing the same graph again just hands those back, all "ok".
    wait_for(lambda: client.run_on_scheduler(_tasks_held) == 0)
    second = lazy.compute()
    assert sent_prompts(ollama_standin) == sent_first  # the rerun asked nothing
    assert (second["status"] == "cached").all()
    pd.testing.assert_series_equal(first["response"], second["response"])
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.suffix == ".sqlite") == [
        f"part-{i:05d}.sqlite" for i in range(4)
    ]


def test_a_killed_worker_loses_no_row_and_resends_no_finished_one(
    ollama_standin_factory: StandinFactory, client: Client, tmp_path: Path
) -> None:
    standin = ollama_standin_factory(num_parallel=2, tokens_per_second=60.0)
    rt = make_runtime(standin.url, tmp_path / "data")
    previous = set_runtime(rt)
    checkpoints = tmp_path / "run"
    try:
        future = client.compute(
            frame(40, 4).ollama.chat("Rate: {text}", concurrency=2, checkpoint=str(checkpoints))
        )
        wait_for(lambda: len(standin.requests("/api/chat")) >= 8)
        victim = next(iter(client.run(os.getpid).values()))
        os.kill(victim, signal.SIGKILL)
        finished_before = _checkpointed_keys(checkpoints)
        result = future.result(timeout=120)
    finally:
        set_runtime(previous)
        rt.close()
    assert len(result) == 40 and result.index.is_unique
    assert result["status"].isin(["ok", "cached"]).all()
    resent = [prompt for prompt, n in sent_prompts(standin).items() if n > 1]
    assert len(resent) <= len(standin.requests("/api/chat")) - len(set(sent_prompts(standin)))
    assert len(finished_before) > 0
    # No row that was finished (checkpointed) when the worker died was asked again.
    assert _checkpointed_keys(checkpoints) >= finished_before
    assert sum(sent_prompts(standin).values()) - 40 <= 4  # at most the rows in flight at the kill


def _tasks_held(dask_scheduler: Scheduler) -> int:
    return len(dask_scheduler.tasks)


def _checkpointed_keys(folder: Path) -> set[str]:
    keys: set[str] = set()
    for path in folder.glob("*.sqlite"):
        with sqlite3.connect(path) as db:
            keys |= {row[0] for row in db.execute("SELECT key FROM rows")}
    return keys


# dask's parquet reader passes inplace=True to pandas, which pandas 3.1 deprecates: not ours.
@pytest.mark.filterwarnings("ignore:.*The inplace keyword")
def test_parquet_to_parquet(
    runtime: Runtime, client: Client, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    frame(30, 3).to_parquet(tmp_path / "in")
    source = dd.read_parquet(tmp_path / "in")
    source.ollama.chat("Rate: {text}").to_parquet(tmp_path / "out")
    written = pd.read_parquet(tmp_path / "out")
    assert len(written) == 30
    assert (written["status"] == "ok").all()
    assert written["response"].str.contains("Rate: item").all()


def test_worker_requests_reach_the_kernels_metrics_store(
    runtime: Runtime, client: Client, ollama_standin: StandinHandle
) -> None:
    frame(10, 2).ollama.chat("Rate: {text}").compute()
    wait_for(lambda: len(metrics(runtime=runtime)) >= 10)
    assert len(metrics(runtime=runtime)) == 10


def test_object_store_checkpoint_without_a_cluster(
    runtime: Runtime, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    # The memory filesystem lives as long as this process: a name of this test's own.
    url = f"memory://ollama-nb-test-{os.getpid()}-{tmp_path.name}/run"
    with dask.config.set(scheduler="sync"):
        lazy = frame(9, 3).ollama.chat("Rate: {text}", checkpoint=url)
        lazy.compute()
        again = lazy.compute()
    assert sum(sent_prompts(ollama_standin).values()) == 9
    assert (again["status"] == "cached").all()


def test_a_file_checkpoint_is_refused_with_the_fix(runtime: Runtime) -> None:
    with pytest.raises(InvalidInputError, match="needs a folder"):
        frame(4, 2).ollama.chat("Rate: {text}", checkpoint="run.sqlite")
