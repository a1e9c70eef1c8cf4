"""A runtime pointed at the stand-in for each test, restored afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_nb.runtime import Runtime
from ollama_nb.testing import StandinHandle
from ollama_nb.testing.pytest_plugin import RuntimeFactory


@pytest.fixture
def runtime(
    ollama_standin: StandinHandle, ollama_runtime_factory: RuntimeFactory, tmp_path: Path
) -> Runtime:
    return ollama_runtime_factory(
        ollama_standin.url, data_dir=tmp_path, retry_attempts=0, default_model="llama3.2"
    )
