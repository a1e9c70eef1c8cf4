"""Errors as Ollama gives them: status codes and ``{"error": ...}`` bodies."""

from __future__ import annotations

import base64

import httpx
import pytest

from ollama_nb.testing import StandinHandle
from ollama_nb.testing.pytest_plugin import StandinFactory


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", {"model": "ghost", "messages": [{"role": "user", "content": "x"}]}),
        ("/api/generate", {"model": "ghost", "prompt": "x"}),
        ("/api/show", {"model": "ghost"}),
        ("/api/embed", {"model": "ghost", "input": "x"}),
    ],
)
def test_unknown_model_is_404(client: httpx.Client, path: str, body: dict[str, object]) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 404
    assert r.json() == {"error": "model 'ghost' not found"}  # current Ollama's words


@pytest.mark.parametrize("path", ["/api/chat", "/api/generate", "/api/show", "/api/embed"])
def test_missing_model_is_400(client: httpx.Client, path: str) -> None:
    r = client.post(path, json={"prompt": "x"})
    assert r.status_code == 400 and r.json() == {"error": "model is required"}


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]"])
def test_bad_body_is_400(client: httpx.Client, raw: bytes) -> None:
    r = client.post("/api/chat", content=raw)
    assert r.status_code == 400 and "error" in r.json()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": "hot"}, 'option "temperature" must be of type float32'),
        ({"num_predict": True}, 'option "num_predict" must be of type integer'),
        ({"use_mmap": 1}, 'option "use_mmap" must be of type boolean'),
        ({"stop": "x"}, 'option "stop" must be of an array of strings'),
    ],
)
def test_invalid_option_types(
    client: httpx.Client, options: dict[str, object], message: str
) -> None:
    r = client.post("/api/generate", json={"model": "llama3.2", "prompt": "x", "options": options})
    assert r.status_code == 400 and r.json() == {"error": message}


def test_unknown_options_are_ignored(client: httpx.Client) -> None:
    r = client.post(
        "/api/generate",
        json={"model": "llama3.2", "prompt": "x", "stream": False, "options": {"made_up": 1}},
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"think": "extreme"},
        {"keep_alive": "forever"},
        {"format": 42},
        {"stream": "yes"},
        {"messages": "hello"},
    ],
)
def test_invalid_fields(client: httpx.Client, body: dict[str, object]) -> None:
    r = client.post("/api/chat", json={"model": "llama3.2", **body})
    assert r.status_code == 400 and r.json()["error"]


def test_thinking_unsupported(client: httpx.Client) -> None:
    r = client.post("/api/chat", json={"model": "llama3.2", "think": True, "messages": []})
    assert r.status_code == 400
    assert r.json() == {"error": '"llama3.2" does not support thinking'}
    ok = client.post(
        "/api/chat", json={"model": "llama3.2", "think": False, "messages": [], "stream": False}
    )
    assert ok.status_code == 200


def test_embedding_model_cannot_chat_or_generate(client: httpx.Client) -> None:
    r = client.post("/api/chat", json={"model": "nomic-embed-text", "messages": []})
    assert (r.status_code, r.json()) == (400, {"error": '"nomic-embed-text" does not support chat'})
    r = client.post("/api/generate", json={"model": "nomic-embed-text", "prompt": "x"})
    assert r.json() == {"error": '"nomic-embed-text" does not support generate'}


def test_tools_unsupported(client: httpx.Client) -> None:
    tool = {"type": "function", "function": {"name": "f"}}
    r = client.post("/api/chat", json={"model": "gemma3:4b", "tools": [tool], "messages": []})
    assert r.status_code == 400 and r.json()["error"] == '"gemma3:4b" does not support tools'


def test_images_need_vision(client: httpx.Client, png_640x480: str) -> None:
    r = client.post(
        "/api/generate", json={"model": "llama3.2", "prompt": "x", "images": [png_640x480]}
    )
    assert r.status_code == 400 and "does not support vision" in r.json()["error"]


def test_data_url_prefix_is_rejected(client: httpx.Client, png_640x480: str) -> None:
    r = client.post(
        "/api/chat",
        json={"model": "gemma3:4b", "messages": [
            {"role": "user", "content": "x", "images": [f"data:image/png;base64,{png_640x480}"]}
        ]},
    )  # fmt: skip
    assert r.status_code == 400
    assert r.json() == {"error": "illegal base64 data at input byte 4"}


def test_undecodable_image_is_rejected(client: httpx.Client) -> None:
    junk = base64.b64encode(b"definitely not an image").decode()
    r = client.post("/api/generate", json={"model": "gemma3:4b", "prompt": "x", "images": [junk]})
    assert r.status_code == 400 and "unknown format" in r.json()["error"]


def test_unknown_route_and_method(client: httpx.Client) -> None:
    r = client.get("/api/nothing")
    assert (r.status_code, r.text) == (404, "404 page not found")
    assert client.get("/api/chat").status_code == 405


@pytest.mark.parametrize(
    ("host", "status"),
    [("evil.example.com", 403), ("8.8.8.8:11434", 403), ("localhost:1", 200), ("x.local", 200)],
)
def test_host_header_check_on_loopback(
    ollama_standin: StandinHandle, host: str, status: int
) -> None:
    r = httpx.get(f"{ollama_standin.url}/api/version", headers={"Host": host})
    assert r.status_code == status


def test_host_check_off_when_bound_to_all_interfaces(
    ollama_standin_factory: StandinFactory,
) -> None:
    handle = ollama_standin_factory(host="0.0.0.0")
    r = httpx.get(f"{handle.url}/api/version", headers={"Host": "evil.example.com"})
    assert r.status_code == 200
