"""``/api/show`` answers are kept until the model changes: asked once, dropped when it does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ollama_nb
from ollama_nb.application.model_infos import ModelInfos
from ollama_nb.domain import ModelInfo, ModelName, ModelSummary
from ollama_nb.runtime import Runtime
from ollama_nb.testing import StandinHandle

HOST = "http://127.0.0.1:1"
T1 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
T2 = dt.datetime(2025, 2, 1, tzinfo=dt.UTC)


def _info(name: str, modified: dt.datetime | None = T1) -> ModelInfo:
    return ModelInfo(name=name, capabilities=("completion",), modified_at=modified)


def test_kept_per_host_and_canonical_name() -> None:
    infos = ModelInfos()
    infos.put(HOST, ModelName("Llama3.2"), _info("llama3.2"))
    assert infos.get(HOST, ModelName("llama3.2:latest")) is not None
    assert infos.get("http://other:11434", ModelName("llama3.2")) is None


def test_dropped_when_the_listing_shows_another_model() -> None:
    infos = ModelInfos()
    name = ModelName("llama3.2")
    infos.put(HOST, name, _info("llama3.2"))
    infos.saw(HOST, [ModelSummary("llama3.2:latest", digest="sha256:aa", modified_at=T1)])
    assert infos.get(HOST, name) is not None  # same model: kept, digest learned
    infos.saw(HOST, [ModelSummary("llama3.2:latest", digest="sha256:bb", modified_at=T1)])
    assert infos.get(HOST, name) is None  # re-pulled under the same name
    infos.put(HOST, name, _info("llama3.2"))
    infos.saw(HOST, [ModelSummary("llama3.2:latest", digest="sha256:bb", modified_at=T2)])
    assert infos.get(HOST, name) is None  # modified since it was shown
    infos.put(HOST, name, _info("llama3.2"))
    infos.saw(HOST, [])
    assert infos.get(HOST, name) is None and len(infos) == 0  # deleted


def test_delete_and_pull_through_us_forget_it(
    ollama_standin: StandinHandle, ollama_runtime: Runtime, tmp_path: Path
) -> None:
    ollama_nb.chat("hello", model="qwen3:0.6b", think=True)  # thinking: checked by /api/show
    ollama_nb.chat("hello again", model="qwen3:0.6b", think=True)
    assert len(ollama_standin.requests("/api/show")) == 1
    infos = ollama_runtime.ports.model_infos
    assert infos.get(ollama_runtime.settings.host, ModelName("qwen3:0.6b")) is not None
    for _ in ollama_nb.pull("qwen3:0.6b"):
        pass
    assert infos.get(ollama_runtime.settings.host, ModelName("qwen3:0.6b")) is None
    ollama_nb.chat("after the pull", model="qwen3:0.6b", think=True)
    assert len(ollama_standin.requests("/api/show")) == 2
