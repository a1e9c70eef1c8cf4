"""Every request kind, through the real API and the stand-in, leaves one row in the store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

import ollama_nb
from ollama_nb.domain import ModelNotFoundError, StreamError
from ollama_nb.runtime import Runtime
from ollama_nb.testing.standin import StandinHandle


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_each_request_kind_is_recorded_with_its_figures(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", "analysis/speed.ipynb")
    ollama_nb.chat("why is the sky blue?", model="llama3.2")
    ollama_nb.generate("count to three", model="llama3.2")
    ollama_nb.chat("what is in this picture?", model="gemma3:4b", images=[_png()])
    ollama_nb.embed(["one", "two"], model="nomic-embed-text")
    list(ollama_nb.pull("moondream"))

    frame = ollama_nb.metrics(runtime=runtime)
    assert frame["kind"].tolist() == ["chat", "generate", "vision", "embed", "pull"]
    assert set(frame["status"]) == {"ok"}
    assert frame["model"].tolist() == [
        "llama3.2:latest",
        "llama3.2:latest",
        "gemma3:4b",
        "nomic-embed-text:latest",
        "moondream:latest",
    ]
    assert set(frame["project"]) == {"telemetry-tests"}
    assert set(frame["notebook"]) == {"analysis/speed.ipynb"}
    assert frame["request_id"].is_unique
    assert (frame["host"] == runtime.settings.host).all()
    assert frame["latency_s"].notna().all()

    chat, generate, vision, embed, _pull = (frame.iloc[i] for i in range(5))
    for row in (chat, generate, vision):
        assert row["ttft_s"] > 0
        assert row["eval_tokens"] > 0 and row["prompt_tokens"] > 0
        assert row["decode_tps"] > 0 and row["prompt_tps"] > 0
        assert row["done_reason"] == "stop"
    assert vision["image_count"] == 1 and chat["image_count"] == 0
    assert embed["prompt_tokens"] > 0 and embed["eval_tokens"] == 0


def test_failures_are_recorded_with_their_error_type(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    with pytest.raises(ModelNotFoundError):
        ollama_nb.chat("hello", model="no-such-model")
    ollama_standin.inject("error_midstream", path="/api/chat")
    with pytest.raises(StreamError):
        ollama_nb.chat("tell me a long story", model="llama3.2")
    with pytest.raises(ModelNotFoundError):
        ollama_nb.embed("x", model="no-such-embedder")

    frame = ollama_nb.metrics(runtime=runtime)
    assert frame["status"].tolist() == ["error", "error", "error"]
    assert frame["error_type"].tolist() == [
        "ModelNotFoundError",
        "StreamError",
        "ModelNotFoundError",
    ]
    assert frame["kind"].tolist() == ["chat", "chat", "embed"]
    summary = ollama_nb.summary(runtime=runtime)
    assert summary.loc["llama3.2:latest", "errors"] == 1
    assert summary.loc["no-such-model:latest", "requests"] == 1


def test_a_slow_load_counts_as_cold(runtime: Runtime, ollama_standin: StandinHandle) -> None:
    ollama_standin.inject("slow_load", path="/api/chat", seconds=0.4)
    ollama_nb.chat("first", model="llama3.2")
    ollama_nb.chat("second", model="llama3.2")
    frame = ollama_nb.metrics(model="llama3.2", runtime=runtime)
    assert frame["cold_load"].tolist() == [True, False]
    assert frame.loc[0, "load_s"] >= 0.4
    summary = ollama_nb.summary(runtime=runtime)
    assert summary.loc["llama3.2:latest", "cold_loads"] == 1
    assert summary.loc["llama3.2:latest", "load_mean_s"] == pytest.approx(frame.loc[0, "load_s"])


def test_history_off_keeps_no_prompt_anywhere_on_disk(runtime: Runtime) -> None:
    runtime.configure(history=False)
    ollama_nb.chat("my secret is platypus-4417", model="llama3.2")
    frame = ollama_nb.metrics(history=True, runtime=runtime)
    assert len(frame) == 1 and frame["prompt"].isna().all()
    store = runtime.telemetry
    store.close()
    data_dir: Path = runtime.settings.data_dir
    files = list(data_dir.iterdir())
    assert any(f.name == "metrics.sqlite" for f in files)
    for path in files:
        assert b"platypus-4417" not in path.read_bytes(), path


def test_history_on_keeps_the_prompt_and_answer(runtime: Runtime) -> None:
    ollama_nb.chat("remember the walrus", model="llama3.2")
    frame = ollama_nb.metrics(history=True, runtime=runtime)
    assert frame.loc[0, "prompt"] == "remember the walrus"
    assert "walrus" in frame.loc[0, "response"]  # the stand-in quotes the question


def test_filters_select_by_time_model_and_project(runtime: Runtime) -> None:
    ollama_nb.chat("a", model="llama3.2")
    ollama_nb.chat("b", model="qwen3:0.6b")
    assert ollama_nb.metrics(model="qwen3:0.6b", runtime=runtime)["model"].tolist() == [
        "qwen3:0.6b"
    ]
    assert len(ollama_nb.metrics(since="1h", runtime=runtime)) == 2
    assert ollama_nb.metrics(since="2099-01-01", runtime=runtime).empty
    assert len(ollama_nb.metrics(project="telemetry-tests", runtime=runtime)) == 2
    assert ollama_nb.metrics(project="other", runtime=runtime).empty


def test_the_store_is_built_once_and_follows_the_data_dir(runtime: Runtime, tmp_path: Path) -> None:
    first = runtime.telemetry
    assert runtime.telemetry is first
    runtime.configure(data_dir=tmp_path / "elsewhere")
    moved = runtime.telemetry
    assert moved is not first
    assert moved.path == tmp_path / "elsewhere" / "metrics.sqlite"
    ollama_nb.chat("after the move", model="llama3.2")
    assert len(ollama_nb.metrics(runtime=runtime)) == 1
    assert runtime._extra_sinks.count(moved) == 1 and first not in runtime._extra_sinks
