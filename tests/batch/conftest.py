"""A runtime pointed at the stand-in for each batch test, restored afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import ollama_nb.batch  # noqa: F401  (registers df.ollama)
from ollama_nb.runtime import Runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing import StandinHandle
from ollama_nb.testing.pytest_plugin import RuntimeFactory


def make_runtime(url: str, data_dir: Path, **settings: Any) -> Runtime:
    values: dict[str, Any] = {
        "host": url,
        "data_dir": data_dir,
        "request_log": False,
        "retry_backoff_s": 0.0,
        "default_model": "llama3.2",
    }
    values.update(settings)
    return Runtime(load_settings(**values))


@pytest.fixture
def runtime(
    ollama_standin: StandinHandle, ollama_runtime_factory: RuntimeFactory, tmp_path: Path
) -> Runtime:
    return ollama_runtime_factory(
        ollama_standin.url, data_dir=tmp_path, retry_backoff_s=0.0, default_model="llama3.2"
    )


@pytest.fixture
def reviews() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product": ["kettle", "lamp", "chair", "mug"],
            "review": [
                "Boils fast and quietly",
                "Flickers after a week",
                "Sturdy but the cushion is thin",
                "Handle got hot",
            ],
        }
    )


def chat_prompts(standin: StandinHandle) -> list[str]:
    """The last user message of every chat request that reached the server."""
    prompts = []
    for entry in standin.requests("/api/chat"):
        users = [m for m in entry["body"]["messages"] if m["role"] == "user"]
        prompts.append(users[-1]["content"])
    return prompts
