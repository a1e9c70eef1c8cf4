"""A runtime pointed at the stand-in for each test, restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing import StandinHandle


@pytest.fixture
def runtime(ollama_standin: StandinHandle, tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(
        load_settings(
            host=ollama_standin.url,
            data_dir=tmp_path,
            request_log=False,
            retry_attempts=0,
            default_model="llama3.2",
        )
    )
    previous = set_runtime(rt)
    try:
        yield rt
    finally:
        set_runtime(previous)
        rt.close()
