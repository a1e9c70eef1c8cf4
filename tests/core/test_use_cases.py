"""Use cases through the real runtime: the gate, the events, partial answers, the bridges."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

import ollama_nb
from ollama_nb.application import use_cases
from ollama_nb.application.replies import ReplyAccumulator
from ollama_nb.domain import (
    ChatChunk,
    ChatResult,
    InvalidInputError,
    ModelNotFoundError,
    StreamError,
)
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing.pytest_plugin import RuntimeFactory


@pytest.fixture
def runtime(ollama_standin: Any, ollama_runtime_factory: RuntimeFactory, tmp_path: Path) -> Runtime:
    return ollama_runtime_factory(
        ollama_standin.url, data_dir=tmp_path, retry_backoff_s=0.0, request_log=True
    )


def test_chat_records_one_event_with_timings(runtime: Runtime) -> None:
    result = ollama_nb.chat("how are you", model="llama3.2")
    assert isinstance(result, ChatResult)
    assert "how are you" in result.text
    assert result.timings.ttft_s is not None and result.timings.latency_s is not None
    assert result.timings.latency_s >= result.timings.ttft_s
    events = runtime.recent.snapshot()
    assert len(events) == 1
    event = events[0]
    assert (event.kind, event.status, event.model) == ("chat", "ok", "llama3.2")
    assert event.timings.eval_count > 0 and event.prompt == "how are you"
    assert event.request_id == result.request_id


def test_a_runtime_without_telemetry_keeps_no_metrics_file(
    ollama_standin: Any, tmp_path: Path
) -> None:
    rt = Runtime(load_settings(host=ollama_standin.url, data_dir=tmp_path), telemetry=False)
    previous = set_runtime(rt)
    try:
        ollama_nb.chat("hello", model="llama3.2")
        rt.configure(history=False)  # a settings change must not attach it either
        ollama_nb.chat("hello again", model="llama3.2")
    finally:
        set_runtime(previous)
        rt.close()
    assert [e.status for e in rt.recent.snapshot()] == ["ok", "ok"]
    assert not list(tmp_path.glob("metrics.sqlite*"))


def test_request_log_is_json_lines_without_prompts(runtime: Runtime, tmp_path: Path) -> None:
    ollama_nb.chat("a secret prompt", model="llama3.2")
    runtime.close()  # flushes the log listener
    lines = (tmp_path / "requests.log").read_text().splitlines()
    record = json.loads(lines[-1])
    assert record["status"] == "ok" and record["model"] == "llama3.2"
    assert record["eval_tokens"] > 0 and record["request_id"]
    assert "secret" not in (tmp_path / "requests.log").read_text()


def test_default_model_and_missing_model(runtime: Runtime) -> None:
    with pytest.raises(InvalidInputError, match="No model given"):
        ollama_nb.chat("hi")
    ollama_nb.configure(default_model="llama3.2")
    assert "hi" in ollama_nb.chat("hi").text


def test_unknown_model_suggests_installed_names(runtime: Runtime) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        ollama_nb.chat("hi", model="llama3.3")
    assert "llama3.2:latest" in str(info.value)
    assert "%ollama pull llama3.3" in str(info.value)
    assert runtime.recent.last is not None and runtime.recent.last.status == "error"


def test_midstream_error_keeps_the_partial_answer(runtime: Runtime, ollama_standin: Any) -> None:
    ollama_standin.inject("error_midstream", after=4)
    with pytest.raises(StreamError) as info:
        ollama_nb.chat("one two three four five six seven eight", model="llama3.2")
    partial = info.value.partial
    assert isinstance(partial, ChatResult) and partial.interrupted
    assert len(partial.text.split()) >= 3
    assert runtime.recent.last is not None and runtime.recent.last.error_type == "StreamError"


def test_stream_chat_yields_pieces(runtime: Runtime) -> None:
    pieces = list(ollama_nb.stream_chat("alpha beta gamma", model="llama3.2"))
    assert len(pieces) > 2 and "alpha beta gamma" in "".join(pieces)


def test_interrupt_cancels_and_keeps_partial(runtime: Runtime, ollama_standin: Any) -> None:
    """A KeyboardInterrupt in the waiting thread cancels the request and frees the slot."""
    ollama_standin.inject("stall", path="/api/chat", after=2)
    import _thread

    assert threading.current_thread() is threading.main_thread()

    pressed: list[ChatChunk] = []

    def interrupt_once_text_arrived(chunk: ChatChunk) -> None:
        if not pressed:  # as Ctrl-C would, once, while the stream heads for its stall
            pressed.append(chunk)
            _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt) as info:
        ollama_nb.chat(
            "one two three four five", model="llama3.2", on_chunk=interrupt_once_text_arrived
        )
    partial = info.value.partial  # type: ignore[attr-defined]
    assert partial.interrupted and partial.text.strip()
    assert runtime.gate.stats().running == 0
    assert runtime.recent.last is not None and runtime.recent.last.status == "interrupted"
    # The pool and the loop are healthy for the next request.
    assert "next" in ollama_nb.chat("next", model="llama3.2").text


async def test_async_api_from_a_running_loop(runtime: Runtime) -> None:
    results = await asyncio.gather(
        ollama_nb.achat("first", model="llama3.2"), ollama_nb.agenerate("second", model="llama3.2")
    )
    assert "first" in results[0].text and "second" in results[1].text


def test_gate_limits_concurrency_to_server_slots(
    ollama_standin_factory: Any, tmp_path: Path
) -> None:
    from ollama_nb.testing import StandinConfig

    server = ollama_standin_factory(StandinConfig(num_parallel=2, tokens_per_second=200))
    rt = Runtime(load_settings(host=server.url, data_dir=tmp_path, parallel=2))
    try:

        async def many(ports: use_cases.Ports) -> list[ChatResult]:
            from ollama_nb.api import chat_request

            requests = [
                chat_request(f"q{i} a b c d", model="llama3.2", runtime=rt) for i in range(6)
            ]
            return await asyncio.gather(*(use_cases.complete(ports, r) for r in requests))

        results = rt.run(many)
        assert len(results) == 6
        assert max(r.timings.queue_wait_s for r in results) > 0
        stats = server.stats()
        assert stats["max_running_seen"] <= 2
        assert rt.gate.stats().admitted == 6
    finally:
        rt.close()


async def test_sync_and_async_embed_take_the_same_keywords(runtime: Runtime) -> None:
    sync = await asyncio.to_thread(ollama_nb.embed, "x", model="nomic-embed-text", dimensions=8)
    awaited = await ollama_nb.aembed("x", model="nomic-embed-text", dimensions=8)
    assert len(sync.embeddings[0]) == len(awaited.embeddings[0]) == 8


def test_embed_models_show_ps_pull(runtime: Runtime) -> None:
    result = ollama_nb.embed(["x", "y"], model="nomic-embed-text")
    assert len(result.embeddings) == 2
    assert any(m.name == "llama3.2:latest" for m in ollama_nb.models())
    assert "vision" in ollama_nb.show("gemma3:4b").capabilities
    statuses = [p.status for p in ollama_nb.pull("phi4-mini")]
    assert statuses[-1] == "success"
    assert "standin" in ollama_nb.version()
    ollama_nb.chat("warm", model="llama3.2")
    assert ollama_nb.ps()
    assert [e.kind for e in runtime.recent.snapshot()] == ["embed", "pull", "chat"]


def test_capability_check_names_vision_models(runtime: Runtime) -> None:
    from ollama_nb.domain import ModelName

    with pytest.raises(InvalidInputError, match=r"does not support vision.*gemma3:4b"):
        runtime.run(lambda p: use_cases.require_capability(p, ModelName("llama3.2"), "vision"))


def test_accumulator_is_shared_with_the_caller(runtime: Runtime) -> None:
    acc = ReplyAccumulator(model="llama3.2")
    from ollama_nb.api import chat_request

    request = chat_request("shared text", model="llama3.2", runtime=runtime)
    result = runtime.run(lambda p: use_cases.complete(p, request, accumulator=acc))
    assert acc.text == result.text and acc.request_id == result.request_id


def test_request_log_rotates_by_size(tmp_path: Path) -> None:
    import time as _time

    from ollama_nb.domain import RequestEvent, Timings
    from ollama_nb.infrastructure.event_sinks import JsonRequestLog

    log = JsonRequestLog(tmp_path / "requests.log", max_bytes=2_000, backups=2)
    event = RequestEvent("abc", _time.time(), "chat", "m", "h", "ok", Timings())
    for _ in range(100):
        log.record(event)
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["requests.log", "requests.log.1", "requests.log.2"]
    for name in files:
        lines = (tmp_path / name).read_text().splitlines()
        assert all(json.loads(line)["request_id"] == "abc" for line in lines)
    assert (tmp_path / "requests.log.1").stat().st_size >= 2_000


def test_request_log_reaches_the_file_at_most_every_second_and_on_close(tmp_path: Path) -> None:
    from ollama_nb.domain import RequestEvent, Timings
    from ollama_nb.infrastructure.event_sinks import JsonRequestLog
    from ollama_nb.testing import ManualClock

    clock = ManualClock()
    path = tmp_path / "requests.log"
    log = JsonRequestLog(path, clock=clock.monotonic)

    def record(request_id: str) -> list[str]:
        log.record(RequestEvent(request_id, clock.time(), "chat", "m", "h", "ok", Timings()))
        return [json.loads(line)["request_id"] for line in path.read_text().splitlines()]

    assert record("first") == ["first"]  # the first line of a session is written at once
    clock.advance(0.5)
    assert record("second") == ["first"]  # buffered: no system call per request
    clock.advance(0.5)
    assert record("third") == ["first", "second", "third"]
    assert record("fourth") == ["first", "second", "third"]
    log.close()
    assert [json.loads(line)["request_id"] for line in path.read_text().splitlines()] == [
        "first",
        "second",
        "third",
        "fourth",
    ]


def test_python_api_images_are_shrunk_and_the_saving_recorded(
    runtime: Runtime, ollama_standin: Any
) -> None:
    from PIL import Image

    big = Image.radial_gradient("L").resize((3000, 2000)).convert("RGB")
    result = ollama_nb.chat("what is this?", model="gemma3:4b", images=[big])
    assert "JPEG" in result.text or "PNG" in result.text
    sent = ollama_standin.requests("/api/chat")[-1]["body"]["messages"][-1]["images"][0]
    assert max(sent["width"], sent["height"]) <= runtime.settings.image_max_side
    event = runtime.recent.last
    assert event is not None and event.kind == "vision" and event.image_count == 1
    assert event.image_bytes_saved > 1_000_000  # 18 MB of raw pixels down to tens of kB
