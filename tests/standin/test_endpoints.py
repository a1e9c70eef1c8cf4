"""Every endpoint's documented shape, over real loopback HTTP with raw httpx."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import httpx

from ollama_nb.testing import StandinConfig, StandinHandle
from ollama_nb.testing.standin.state import StandinState

_FINAL_KEYS = {
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
}


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(x) for x in response.text.splitlines() if x.strip()]


def test_root_and_head(client: httpx.Client) -> None:
    r = client.get("/")
    assert (r.status_code, r.text) == (200, "Ollama is running")
    h = client.head("/")
    assert h.status_code == 200 and h.content == b""


def test_version_says_standin(client: httpx.Client) -> None:
    version = client.get("/api/version").json()["version"]
    assert version.endswith("-standin")
    assert [int(p) for p in version.split("-")[0].split(".")] >= [0, 13, 0]


def test_tags_lists_catalogue(client: httpx.Client) -> None:
    models = client.get("/api/tags").json()["models"]
    names = {m["name"] for m in models}
    assert names == {"llama3.2:latest", "qwen3:0.6b", "gemma3:4b", "nomic-embed-text:latest"}
    llama = next(m for m in models if m["name"] == "llama3.2:latest")
    assert llama["model"] == "llama3.2:latest" and llama["size"] > 0 and len(llama["digest"]) == 64
    assert llama["details"]["parameter_size"] == "3.2B"
    assert llama["details"]["quantization_level"] == "Q4_K_M"
    assert llama["details"]["family"] == "llama"
    datetime.fromisoformat(llama["modified_at"])


def test_show_with_model_and_legacy_name(client: httpx.Client) -> None:
    shown = client.post("/api/show", json={"model": "qwen3:0.6b"}).json()
    assert shown["capabilities"] == ["completion", "tools", "thinking"]
    assert shown["model_info"]["qwen3.context_length"] == 40960
    assert {"details", "parameters", "template", "modified_at", "modelfile"} <= shown.keys()
    legacy = client.post("/api/show", json={"name": "GEMMA3:4b"}).json()
    assert legacy["capabilities"] == ["completion", "vision"]
    embed = client.post("/api/show", json={"model": "nomic-embed-text"}).json()
    assert embed["capabilities"] == ["embedding"]


def test_chat_stream_shape(client: httpx.Client) -> None:
    r = client.post(
        "/api/chat",
        json={"model": "llama3.2", "messages": [{"role": "user", "content": "hi there"}]},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    chunks = ndjson(r)
    assert all(c["model"] == "llama3.2" for c in chunks)
    assert all(c["done"] is False for c in chunks[:-1])
    text = "".join(str(c["message"]["content"]) for c in chunks)
    assert text == 'You said: "hi there".'
    final = chunks[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final.keys() >= _FINAL_KEYS
    assert final["eval_count"] == len(chunks) - 1
    assert all(isinstance(final[k], int) and final[k] > 0 for k in _FINAL_KEYS)
    datetime.fromisoformat(str(final["created_at"]))


def test_chat_non_stream(client: httpx.Client) -> None:
    r = client.post(
        "/api/chat",
        json={
            "model": "llama3.2",
            "stream": False,
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "second"},
            ],
        },
    )
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["message"] == {
        "role": "assistant",
        "content": 'You said: "second". System said: "be brief".',
    }
    assert body["done"] is True and body.keys() >= _FINAL_KEYS


def test_generate_stream_and_context(client: httpx.Client) -> None:
    chunks = ndjson(
        client.post("/api/generate", json={"model": "llama3.2", "prompt": "Why?", "system": "S"})
    )
    text = "".join(str(c["response"]) for c in chunks)
    assert text == 'You said: "Why?". System said: "S".'
    final = chunks[-1]
    assert final["done"] is True and isinstance(final["context"], list) and final["context"]
    raw = client.post(
        "/api/generate", json={"model": "llama3.2", "prompt": "x", "raw": True, "stream": False}
    ).json()
    assert "context" not in raw and raw["response"] == 'You said: "x".'


def test_generate_load_and_unload(client: httpx.Client) -> None:
    r = client.post("/api/generate", json={"model": "llama3.2"})
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["done_reason"] == "load" and r.json()["done"] is True
    assert [m["name"] for m in client.get("/api/ps").json()["models"]] == ["llama3.2:latest"]
    r = client.post("/api/generate", json={"model": "llama3.2", "keep_alive": 0})
    assert r.json()["done_reason"] == "unload"
    assert client.get("/api/ps").json()["models"] == []


def test_chat_load_and_unload(client: httpx.Client) -> None:
    assert (
        client.post("/api/chat", json={"model": "gemma3:4b", "messages": []}).json()["done_reason"]
        == "load"
    )
    r = client.post("/api/chat", json={"model": "gemma3:4b", "messages": [], "keep_alive": 0})
    assert r.json()["done_reason"] == "unload" and r.json()["message"]["role"] == "assistant"


def test_num_predict_and_stop(client: httpx.Client) -> None:
    msg = [{"role": "user", "content": "one two three four"}]
    cut = client.post(
        "/api/chat",
        json={"model": "llama3.2", "messages": msg, "stream": False,
              "options": {"num_predict": 2, "seed": 1, "temperature": 0}},
    ).json()  # fmt: skip
    assert cut["done_reason"] == "length" and cut["eval_count"] == 2
    assert cut["message"]["content"] == "You said:"
    stopped = client.post(
        "/api/chat",
        json={
            "model": "llama3.2",
            "messages": msg,
            "stream": False,
            "options": {"stop": ["three"]},
        },
    ).json()
    assert stopped["done_reason"] == "stop"
    assert stopped["message"]["content"] == 'You said: "one two '


def test_json_format(client: httpx.Client) -> None:
    body = client.post(
        "/api/generate",
        json={"model": "llama3.2", "prompt": "colours?", "format": "json", "stream": False},
    ).json()
    assert isinstance(json.loads(body["response"]), dict)


def test_schema_format_follows_docs_example(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"age": {"type": "integer"}, "available": {"type": "boolean"}},
        "required": ["age", "available"],
    }
    body = client.post(
        "/api/chat",
        json={
            "model": "llama3.2",
            "stream": False,
            "format": schema,
            "messages": [{"role": "user", "content": "Ollama is 22 years old and busy."}],
        },
    ).json()
    assert json.loads(body["message"]["content"]) == {"age": 22, "available": True}


def test_thinking_streams_first(client: httpx.Client) -> None:
    chunks = ndjson(
        client.post(
            "/api/chat",
            json={"model": "qwen3:0.6b", "think": "high",
                  "messages": [{"role": "user", "content": "hey"}]},
        )
    )  # fmt: skip
    kinds = ["thinking" if c["message"].get("thinking") else "content" for c in chunks[:-1]]
    assert kinds[0] == "thinking" and kinds[-1] == "content"
    assert kinds == sorted(kinds, key=lambda k: k == "content")
    thought = "".join(str(c["message"].get("thinking", "")) for c in chunks)
    assert "hey" in thought and "high" in thought


def test_thinking_on_generate_and_off_switch(client: httpx.Client) -> None:
    on = client.post(
        "/api/generate", json={"model": "qwen3:0.6b", "prompt": "p", "think": True, "stream": False}
    ).json()
    assert on["thinking"] and on["response"] == 'You said: "p".'
    off = client.post(
        "/api/generate",
        json={"model": "qwen3:0.6b", "prompt": "p", "think": False, "stream": False},
    ).json()
    assert "thinking" not in off


def test_images_are_described(client: httpx.Client, jpeg_1024x768: str, png_640x480: str) -> None:
    body = client.post(
        "/api/chat",
        json={
            "model": "gemma3:4b",
            "stream": False,
            "messages": [
                {"role": "user", "content": "what?", "images": [jpeg_1024x768, png_640x480]}
            ],
        },
    ).json()
    assert body["message"]["content"].endswith("Images received: 1) JPEG 1024x768 2) PNG 640x480.")
    assert body["prompt_eval_count"] >= 512
    gen = client.post(
        "/api/generate",
        json={"model": "gemma3:4b", "prompt": "p", "images": [png_640x480], "stream": False},
    ).json()
    assert "Images received: 1) PNG 640x480." in gen["response"]


def test_tool_call_when_named(client: httpx.Client) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    }
    body = client.post(
        "/api/chat",
        json={"model": "llama3.2", "stream": False, "tools": [tool],
              "messages": [{"role": "user", "content": "call get_weather for Paris"}]},
    ).json()  # fmt: skip
    call = body["message"]["tool_calls"][0]["function"]
    assert call["name"] == "get_weather" and call["arguments"]["unit"] == "c"
    followup = client.post(
        "/api/chat",
        json={"model": "llama3.2", "stream": False, "tools": [tool],
              "messages": [{"role": "user", "content": "call get_weather"},
                           {"role": "tool", "content": "18C", "tool_name": "get_weather"}]},
    ).json()  # fmt: skip
    assert followup["message"]["content"] == 'Tool get_weather returned: "18C".'


def test_embed_shapes(client: httpx.Client) -> None:
    one = client.post("/api/embed", json={"model": "nomic-embed-text", "input": "sky"}).json()
    assert len(one["embeddings"]) == 1 and len(one["embeddings"][0]) == 768
    assert math.isclose(math.hypot(*one["embeddings"][0]), 1.0, rel_tol=1e-9)
    assert {"total_duration", "load_duration", "prompt_eval_count"} <= one.keys()
    two = client.post("/api/embed", json={"model": "nomic-embed-text", "input": ["sky", "sea"]})
    vectors = two.json()["embeddings"]
    assert vectors[0] == one["embeddings"][0] and vectors[0] != vectors[1]
    small = client.post(
        "/api/embed", json={"model": "nomic-embed-text", "input": "sky", "dimensions": 8}
    ).json()
    assert len(small["embeddings"][0]) == 8
    empty = client.post("/api/embed", json={"model": "nomic-embed-text", "input": []}).json()
    assert empty["embeddings"] == []


def test_legacy_embeddings(client: httpx.Client) -> None:
    body = client.post("/api/embeddings", json={"model": "nomic-embed-text", "prompt": "x"}).json()
    assert len(body["embedding"]) == 768
    assert client.post("/api/embeddings", json={"model": "nomic-embed-text"}).json() == {
        "embedding": []
    }


def test_pull_stream_installs(client: httpx.Client) -> None:
    lines = ndjson(client.post("/api/pull", json={"model": "moondream"}))
    statuses = [str(x["status"]) for x in lines]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layer = [x for x in lines if str(x["status"]).startswith("pulling ") and "digest" in x]
    first = str(layer[0]["digest"])
    assert first.startswith("sha256:") and layer[0]["status"] == f"pulling {first[7:19]}"
    progress = [x["completed"] for x in layer if x["digest"] == first and "completed" in x]
    assert len(progress) >= 3 and progress == sorted(progress)
    assert progress[-1] == layer[0]["total"]
    assert "moondream:latest" in {m["name"] for m in client.get("/api/tags").json()["models"]}


def test_pull_non_stream_and_unknown(client: httpx.Client) -> None:
    assert client.post("/api/pull", json={"model": "phi4-mini", "stream": False}).json() == {
        "status": "success"
    }
    r = client.post("/api/pull", json={"model": "no-such-model"})
    assert r.status_code == 200
    unknown = (
        "pull model manifest: file does not exist: no-such-model is not one of the models "
        "this server can pull (all-minilm:latest, gemma3:4b, llama3.2:latest, "
        "moondream:latest, nomic-embed-text:latest, phi4-mini:latest, qwen3:0.6b)"
    )
    assert ndjson(r)[-1] == {"error": unknown}
    r = client.post("/api/pull", json={"model": "no-such-model", "stream": False})
    assert r.status_code == 500
    assert r.json() == {"error": unknown}


def test_delete_and_copy(client: httpx.Client) -> None:
    assert (
        client.post("/api/copy", json={"source": "llama3.2", "destination": "mine:v1"}).status_code
        == 200
    )
    assert (
        client.post("/api/show", json={"model": "mine:v1"}).json()["details"]["family"] == "llama"
    )
    r = client.post("/api/copy", json={"source": "ghost", "destination": "x"})
    assert r.status_code == 404 and "ghost" in r.json()["error"]
    r = client.request("DELETE", "/api/delete", json={"model": "mine:v1"})
    assert r.status_code == 200
    r = client.request("DELETE", "/api/delete", json={"model": "mine:v1"})
    assert r.status_code == 404 and r.json() == {"error": "model 'mine:v1' not found"}


def test_reset_restores_installed_models(
    client: httpx.Client, ollama_standin: StandinHandle
) -> None:
    client.request("DELETE", "/api/delete", json={"model": "llama3.2"})
    assert client.post("/api/show", json={"model": "llama3.2"}).status_code == 404
    ollama_standin.reset()
    assert client.post("/api/show", json={"model": "llama3.2"}).status_code == 200


def test_ps_shape(client: httpx.Client) -> None:
    client.post("/api/chat", json={"model": "llama3.2", "messages": [], "keep_alive": "10m"})
    model = client.get("/api/ps").json()["models"][0]
    assert {"name", "model", "size", "digest", "details", "expires_at", "size_vram",
            "context_length"} <= model.keys()  # fmt: skip
    left = datetime.fromisoformat(model["expires_at"]) - datetime.now(UTC)
    assert 9 * 60 < left.total_seconds() <= 10 * 60
    assert model["context_length"] == 4096


def test_num_ctx_change_reloads(client: httpx.Client) -> None:
    client.post("/api/chat", json={"model": "llama3.2", "messages": []})
    client.post(
        "/api/chat", json={"model": "llama3.2", "messages": [], "options": {"num_ctx": 8192}}
    )
    assert client.get("/api/ps").json()["models"][0]["context_length"] == 8192


def test_request_log_describes_images(
    client: httpx.Client, ollama_standin: StandinHandle, png_640x480: str
) -> None:
    client.post(
        "/api/generate",
        json={"model": "gemma3:4b", "prompt": "p", "images": [png_640x480], "stream": False},
        headers={"User-Agent": "test-agent"},
    )
    entry = ollama_standin.requests(path="/api/generate")[-1]
    assert entry["method"] == "POST" and entry["headers"]["user-agent"] == "test-agent"
    image = entry["body"]["images"][0]
    assert (image["format"], image["width"], image["height"]) == ("PNG", 640, 480)
    assert png_640x480 not in json.dumps(entry)


def test_request_log_keeps_last_thousand() -> None:
    state = StandinState(StandinConfig(), {})
    for i in range(1005):
        state.record("GET", f"/api/{i}", {}, None, None)
    assert len(state.log) == 1000 and state.log[0]["path"] == "/api/5"
