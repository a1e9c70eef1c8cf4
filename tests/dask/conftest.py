"""A two-process LocalCluster and a runtime pointed at the stand-in, for Dask batch tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

import ollama_nb.dask  # noqa: F401  (registers ddf.ollama)
from ollama_nb.runtime import Runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing import StandinHandle
from ollama_nb.testing.pytest_plugin import RuntimeFactory


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    # A killed worker's leases come back when the scheduler removes it (the slot broker).
    with LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0"
    ) as local:
        yield local


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster) as connected:
        yield connected


def make_runtime(url: str, data_dir: Path) -> Runtime:
    return Runtime(
        load_settings(
            host=url,
            data_dir=data_dir,
            request_log=False,
            retry_backoff_s=0.0,
            default_model="llama3.2",
        )
    )


@pytest.fixture
def runtime(
    ollama_standin: StandinHandle, ollama_runtime_factory: RuntimeFactory, tmp_path: Path
) -> Runtime:
    return ollama_runtime_factory(
        ollama_standin.url,
        data_dir=tmp_path / "data",
        retry_backoff_s=0.0,
        default_model="llama3.2",
    )
