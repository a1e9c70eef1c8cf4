"""The embedded server over real HTTP: Ollama's semantics with real tokens."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

from ollama_nb.embedded import EmbeddedConfig, ModelSpec
from ollama_nb.serving import Server

from .conftest import NO_LLAMA, Factory

pytestmark = NO_LLAMA
MODEL = "smollm2:135m"
EMBED = "all-minilm:latest"


def _gen(
    prompt: str = "Tell me a long story about the sea.", **options: object
) -> dict[str, object]:
    return {"model": MODEL, "prompt": prompt, "stream": False, "options": options}


def test_version_tags_and_show_say_what_this_is(client: httpx.Client) -> None:
    assert client.get("/api/version").json()["version"].endswith("-embedded")
    names = [m["name"] for m in client.get("/api/tags").json()["models"]]
    assert names == [MODEL, EMBED]
    show = client.post("/api/show", json={"model": MODEL}).json()
    assert show["capabilities"] == ["completion"]
    assert show["details"]["family"] == "llama"
    assert show["details"]["quantization_level"] == "Q4_1"
    assert "<|im_start|>{{ .Role }}" in show["template"]
    assert 'stop                           "<|im_end|>"' in show["parameters"]
    embedder = client.post("/api/show", json={"model": EMBED}).json()
    assert embedder["capabilities"] == ["embedding"]
    assert embedder["details"]["family"] == "bert"
    assert embedder["details"]["quantization_level"] == "F16"


def test_num_predict_ends_with_length_and_real_timings(client: httpx.Client) -> None:
    body = client.post("/api/generate", json=_gen(num_predict=5, temperature=0)).json()
    assert body["done_reason"] == "length"
    assert body["eval_count"] == 5
    assert body["response"].strip()
    assert body["prompt_eval_count"] > 3
    for key in ("eval_duration", "prompt_eval_duration", "load_duration", "total_duration"):
        assert isinstance(body[key], int) and body[key] > 0
    assert body["total_duration"] >= body["eval_duration"] + body["prompt_eval_duration"]


def test_seed_makes_sampling_repeatable_and_stop_cuts(client: httpx.Client) -> None:
    opts = {"num_predict": 12, "temperature": 1.0, "seed": 1234}
    first = client.post("/api/generate", json=_gen("Once upon a time", **opts)).json()
    again = client.post("/api/generate", json=_gen("Once upon a time", **opts)).json()
    assert first["response"] == again["response"]
    word = first["response"].split()[1] if len(first["response"].split()) > 1 else ""
    if word:
        cut = client.post("/api/generate", json=_gen("Once upon a time", stop=[word], **opts))
        assert word not in cut.json()["response"]
        assert cut.json()["done_reason"] == "stop"


def test_streamed_chat_ends_with_a_done_line(client: httpx.Client) -> None:
    request = {
        "model": MODEL,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Name a colour."}],
        "options": {"num_predict": 6, "temperature": 0},
    }  # fmt: skip
    with client.stream("POST", "/api/chat", json=request) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert all(not line["done"] for line in lines[:-1])
    assert lines[-1]["done"] and lines[-1]["eval_count"] <= 6
    assert "".join(line["message"]["content"] for line in lines).strip()


def test_prompt_longer_than_num_ctx(client: httpx.Client) -> None:
    long_prompt = " ".join(["word"] * 200)
    refused = client.post(
        "/api/generate", json={**_gen(long_prompt, num_ctx=64, num_predict=2), "truncate": False}
    )
    assert refused.status_code == 400
    assert "exceeds the available context size (64 tokens)" in refused.json()["error"]
    shortened = client.post("/api/generate", json=_gen(long_prompt, num_ctx=64, num_predict=2))
    assert shortened.status_code == 200
    assert shortened.json()["prompt_eval_count"] <= 32  # half the context kept free


def test_images_and_embeddings_are_refused_plainly(client: httpx.Client) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, format="PNG")
    image = base64.b64encode(buf.getvalue()).decode()
    chat = client.post(
        "/api/chat",
        json={"model": MODEL, "messages": [{"role": "user", "content": "?", "images": [image]}]},
    )
    assert chat.status_code == 400 and "does not support vision" in chat.json()["error"]
    embed = client.post("/api/embed", json={"model": MODEL, "input": "hello"})
    assert embed.status_code == 400
    assert embed.json()["error"] == f'"{MODEL}" does not support embeddings'


def test_ps_shows_memory_and_keep_alive_zero_unloads(client: httpx.Client) -> None:
    client.post("/api/generate", json={**_gen(num_predict=1), "keep_alive": "5m"})
    loaded = {m["name"]: m for m in client.get("/api/ps").json()["models"]}
    tags = {m["name"]: m for m in client.get("/api/tags").json()["models"]}
    assert loaded[MODEL]["size"] > tags[MODEL]["size"]  # weights + KV cache + runtime
    assert loaded[MODEL]["size_vram"] == 0 and loaded[MODEL]["context_length"] == 4096
    client.post("/api/generate", json={"model": MODEL, "keep_alive": 0})
    assert MODEL not in [m["name"] for m in client.get("/api/ps").json()["models"]]


def test_a_cancelled_stream_frees_the_slot(client: httpx.Client, embedded: Server) -> None:
    long = {**_gen("Write a long story.", num_predict=4000), "stream": True}
    with client.stream("POST", "/api/generate", json=long) as response:
        first = next(line for line in response.iter_lines() if line)
        assert not json.loads(first)["done"]
    # The connection is closed mid-stream; the next request gets the model's only slot.
    after = client.post("/api/generate", json=_gen(num_predict=2), timeout=60).json()
    assert after["done_reason"] == "length"
    # The server frees the slot just after its last line is sent: wait for that, bounded.
    freed, tick = time.monotonic() + 10, threading.Event()
    while embedded.state.slots.running and time.monotonic() < freed:
        tick.wait(0.01)
    assert embedded.state.slots.running == 0


def test_queue_full_answers_503(embedded_factory: Factory) -> None:
    server = embedded_factory(max_queue=1)
    long = {**_gen("Tell me everything.", num_predict=4000), "stream": True}

    async def scenario() -> tuple[int, str]:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as c:
            async with c.stream("POST", "/api/generate", json=long) as running:
                lines = running.aiter_lines()
                await anext(lines)  # the one slot is busy generating
                waiting = asyncio.ensure_future(c.post("/api/generate", json=_gen(num_predict=1)))
                # Polls the server's own counter: it runs on another thread and loop.
                while server.state.slots.waiting < 1:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                refused = await c.post("/api/generate", json=_gen(num_predict=1))
            done = await waiting  # served once the stream above was closed
            return refused.status_code, f"{refused.json()['error']}|{done.status_code}"

    status, text = asyncio.run(scenario())
    assert status == 503
    assert text == "server busy, please try again.  maximum pending requests exceeded|200"


def test_a_model_too_large_is_refused_before_loading(embedded_factory: Factory) -> None:
    server = embedded_factory(EmbeddedConfig(memory_available=lambda: 64 * 1024**2))
    response = httpx.post(server.url + "/api/generate", json=_gen(num_predict=1), timeout=60)
    assert response.status_code == 500
    error = response.json()["error"]
    assert error.startswith("model requires more system memory (0.")
    assert "than is available (0.06 GiB): smollm2:135m = weights 0.09 GiB + KV cache" in error
    assert httpx.get(server.url + "/api/ps").json()["models"] == []


def test_user_gguf_files_are_served_by_name(
    embedded_factory: Factory, default_gguf: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "My-Base.gguf"
    mine.symlink_to(default_gguf)
    config = EmbeddedConfig(models=(ModelSpec("mine:v1", mine),), include_default=False)
    server = embedded_factory(config)
    names = [m["name"] for m in httpx.get(server.url + "/api/tags").json()["models"]]
    assert names == ["mine:v1"]
    body = httpx.post(
        server.url + "/api/generate",
        json={"model": "mine:v1", "prompt": "Count to twenty.", "stream": False,
              "options": {"num_predict": 3, "temperature": 0}},
        timeout=60,
    ).json()  # fmt: skip
    assert body["eval_count"] == 3 and body["done_reason"] == "length"


def test_format_json_constrains_the_answer(client: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    body = client.post(
        "/api/generate",
        json={**_gen("Answer in JSON:", num_predict=40, temperature=0), "format": schema},
    ).json()
    assert isinstance(json.loads(body["response"])["ok"], bool)


def test_the_server_manager_machinery_starts_and_stops_it(tmp_path: Path) -> None:
    from ollama_nb.embedded import is_embedded_binary
    from ollama_nb.infrastructure.host import parse_ollama_host
    from ollama_nb.ollama_process.embedded_start import start_embedded_server
    from ollama_nb.ollama_process.process import ServerProcess, forget
    from tests.magics.conftest import dead_url

    host = parse_ollama_host(dead_url())
    outcome = start_embedded_server(host, tmp_path, timeout_s=120)
    server = ServerProcess(host, tmp_path)
    try:
        assert outcome.action == "started" and outcome.state is not None
        assert is_embedded_binary(outcome.state.binary)
        assert outcome.state.parallel == 1
        version = httpx.get(host.base_url + "/api/version").json()["version"]
        assert version.endswith("-embedded")
        assert_no_test_hooks(host.base_url)
    finally:
        stopped = server.stop()
        forget(server)
    assert stopped.action == "stopped"
    assert not server.answering()


STANDIN_PATHS = ("/_standin/faults", "/_standin/requests", "/_standin/reset",
                 "/_standin/stats", "/_standin/")  # fmt: skip
FAULT_HEADERS = ("http_500", "http_503", "error_midstream", "drop", "stall", "slow_load")


def assert_no_test_hooks(base_url: str) -> None:
    """What ``python -m ollama_nb.embedded serve`` must not have: admin, faults, a prompt log."""
    with httpx.Client(base_url=base_url, timeout=120) as c:
        for path in STANDIN_PATHS:
            for method in ("GET", "POST", "DELETE"):
                response = c.request(method, path, json={"fault": "http_500"})
                assert (response.status_code, response.text) == (404, "404 page not found")
        secret = "zebra-4417 is the passphrase"
        for fault in FAULT_HEADERS:
            headers = {"X-Standin-Fault": fault, "X-Standin-Fault-Seconds": "30"}
            body = c.post("/api/generate", json=_gen(secret, num_predict=1), headers=headers)
            assert body.status_code == 200 and body.json()["done"] is True
        for path in ("/", "/api/version", "/api/tags", "/api/ps", *STANDIN_PATHS):
            assert "zebra-4417" not in c.get(path).text
        assert "zebra-4417" not in c.post("/api/show", json={"model": MODEL}).text


def test_the_embedded_server_has_no_test_hooks(embedded: Server) -> None:
    assert_no_test_hooks(embedded.url)
