"""Hostile and careless requests: each gets one clear error, and the server keeps serving.

Every test ends by asking the server for a real answer, so a crash, a hang or a leaked
slot fails the test that caused it.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from .conftest import NEEDS_SERVER, SHORT, Target

pytestmark = [NEEDS_SERVER, pytest.mark.timeout(600)]
OURS = "checks a bound or message of the embedded server, which Ollama does not share"


@pytest.fixture
def client(target: Target) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.url, timeout=300) as c:
        yield c


def _still_serving(client: httpx.Client, target: Target) -> None:
    reply = client.post(
        "/api/generate",
        json={"model": target.chat_model, "prompt": "Hi", "stream": False, "options": SHORT},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["done"] is True


def test_a_schema_that_crashed_llama_cpp_is_refused_by_name(
    client: httpx.Client, target: Target
) -> None:
    if target.real_ollama:
        pytest.skip(OURS)
    for schema, keyword in (
        ({"type": "string", "maxLength": 2000}, "maxLength"),
        ({"type": "array", "items": {"type": "integer"}, "maxItems": 5000}, "maxItems"),
        ({"type": "string", "pattern": "^a{3000}$"}, "pattern"),
        ({"type": "array", "uniqueItems": True}, "uniqueItems"),
        ({"$ref": "https://example.com/schema.json"}, "$ref"),
    ):
        reply = client.post(
            "/api/chat",
            json={"model": target.chat_model, "messages": [{"role": "user", "content": "x"}],
                  "format": schema, "stream": False},
        )  # fmt: skip
        assert reply.status_code == 400, reply.text
        assert f'"{keyword}"' in reply.json()["error"]
    _still_serving(client, target)


def test_a_cross_origin_simple_post_is_refused_before_any_work(
    client: httpx.Client, target: Target
) -> None:
    reply = client.post(
        "/api/copy",
        content=f'{{"source": "{target.chat_model}", "destination": "pwned"}}',
        headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
    )
    assert reply.status_code == 403
    assert "access-control-allow-origin" not in reply.headers
    names = [m["name"] for m in client.get("/api/tags").json()["models"]]
    assert not any(n.startswith("pwned") for n in names)
    preflight = client.options(
        "/api/chat",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 403
    _still_serving(client, target)


def test_allowed_origins_get_cors_answers(client: httpx.Client, target: Target) -> None:
    for origin in ("http://localhost:8888", "http://127.0.0.1", "vscode-webview://abc",
                   "app://obsidian.md", "tauri://localhost"):  # fmt: skip
        preflight = client.options(
            "/api/chat",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"},
        )  # fmt: skip
        assert preflight.status_code == 204, origin
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
        tags = client.get("/api/tags", headers={"Origin": origin})
        assert tags.status_code == 200
        assert tags.headers["access-control-allow-origin"] == origin


def test_a_huge_num_ctx_is_clamped_with_a_warning(
    client: httpx.Client, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ollama_nb.serving")
    trained = client.post("/api/show", json={"model": target.chat_model}).json()["model_info"]
    arch = trained["general.architecture"]
    reply = client.post(
        "/api/generate",
        json={"model": target.chat_model, "prompt": "Hi", "stream": False,
              "options": {**SHORT, "num_ctx": 10_000_000}},
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    loaded = client.get("/api/ps").json()["models"]
    assert loaded and loaded[0]["context_length"] <= trained[f"{arch}.context_length"]
    if not target.real_ollama:
        assert any("requested context size too large" in r.getMessage() for r in caplog.records)
    # back to the default context for the modules after this one
    client.post("/api/generate", json={"model": target.chat_model, "keep_alive": 0})


def test_a_body_over_the_limit_is_refused_from_its_header_in_words(target: Target) -> None:
    if target.real_ollama:
        pytest.skip(OURS)
    host, port = target.host.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000000\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"request body is larger than this server accepts" in answer
    with httpx.Client(base_url=target.url, timeout=300) as client:
        _still_serving(client, target)


def test_the_model_is_looked_up_before_images_are_decoded(client: httpx.Client) -> None:
    junk = base64.b64encode(b"\0" * 4_000_000).decode()
    reply = client.post(
        "/api/generate", json={"model": "no-such-model", "prompt": "x", "images": [junk]}
    )
    assert reply.status_code == 404
    assert "not found" in reply.json()["error"]


def test_invalid_names_are_refused_as_ollama_refuses_them(
    client: httpx.Client, target: Target
) -> None:
    for bad in ("bad name", "../../etc", "a" * 81, ":tag", "x/y/z/w"):
        reply = client.post("/api/copy", json={"source": target.chat_model, "destination": bad})
        assert reply.status_code == 400, bad
        assert reply.json()["error"] == f'destination "{bad}" is invalid'
    missing = client.post("/api/copy", json={"source": "ghost", "destination": "x"})
    assert missing.status_code == 404


def test_null_options_are_ignored(client: httpx.Client, target: Target) -> None:
    reply = client.post(
        "/api/generate",
        json={"model": target.chat_model, "prompt": "Hi", "stream": False,
              "options": {**SHORT, "top_k": None, "mirostat": None, "stop": None}},
    )  # fmt: skip
    assert reply.status_code == 200, reply.text


def test_create_and_push_say_they_are_not_supported(client: httpx.Client, target: Target) -> None:
    if target.real_ollama:
        pytest.skip(OURS)
    for path in ("/api/create", "/api/push"):
        reply = client.post(path, json={"model": "mine", "from": target.chat_model})
        assert reply.status_code == 501
        assert "not supported by the embedded server" in reply.json()["error"]
    pulled = client.post("/api/pull", json={"model": "llama3.2", "stream": False})
    assert pulled.status_code == 500
    assert target.chat_model in pulled.json()["error"]  # names what can be pulled


def test_seeded_greedy_answers_do_not_depend_on_the_request_before(
    client: httpx.Client, target: Target
) -> None:
    def ask(prompt: str) -> str:
        body = {"model": target.chat_model, "prompt": prompt, "stream": False,
                "options": {"num_predict": 8, "temperature": 0, "seed": 3}}  # fmt: skip
        return str(client.post("/api/generate", json=body).json()["response"])

    first = ask("Once upon a time")
    ask("A completely different prompt about the sea")
    assert ask("Once upon a time") == first


def _wait_for(caplog: pytest.LogCaptureFixture, text: str, seconds: float = 240) -> None:
    """Until a log record contains ``text`` (bounded; the server runs in this process)."""
    deadline = time.monotonic() + seconds
    while not any(text in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, f"no log record with {text!r}"
        time.sleep(0.01)


def test_a_client_that_leaves_during_prompt_evaluation_frees_the_model(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    if target.real_ollama:
        pytest.skip(OURS)
    caplog.set_level(logging.DEBUG, logger="ollama_nb.embedded")
    body = json.dumps(
        {"model": target.chat_model, "prompt": "word " * 6000, "options": {"num_ctx": 8192}}
    ).encode()
    host, port = target.host.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body
        )  # fmt: skip
        _wait_for(caplog, "evaluating a prompt of")
    # the client is gone: the engine stops between two batches and says so
    _wait_for(caplog, "prompt evaluation cancelled")
    with httpx.Client(base_url=target.url, timeout=300) as client:
        _still_serving(client, target)
        client.post("/api/generate", json={"model": target.chat_model, "keep_alive": 0})
