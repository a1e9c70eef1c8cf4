"""The server's own rules, without a model: origins, names, schemas, the accept loop."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import re
import socket

import httpx
import pytest

from ollama_nb.serving import ServerConfig
from ollama_nb.serving.accept import AcceptLoop
from ollama_nb.serving.catalogue import valid_name
from ollama_nb.serving.origins import OriginPolicy, default_origins, origins_from_env
from ollama_nb.serving.schemas import MAX_REPEAT, SchemaError, check_schema
from ollama_nb.serving.wire import ApiError, options_field
from ollama_nb.testing.standin import StandinConfig, StandinServer


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost", "https://localhost", "http://localhost:8888", "http://127.0.0.1:3000",
        "https://0.0.0.0:1", "app://anything", "file://", "tauri://localhost",
        "vscode-webview://x", "vscode-file://vscode-app",
    ],
)  # fmt: skip
def test_ollamas_default_origins_are_allowed(origin: str) -> None:
    assert OriginPolicy.of(default_origins()).allows(origin)


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example", "https://localhost.evil.example", "http://127.0.0.2",
        "null", "http://[::1]:80", "chrome-extension://abc", "http://localhostx",
    ],
)  # fmt: skip
def test_other_origins_are_not(origin: str) -> None:
    assert not OriginPolicy.of(default_origins()).allows(origin)


def test_ollama_origins_adds_exact_values_and_one_star_patterns() -> None:
    config = ServerConfig.from_environ(
        {"OLLAMA_ORIGINS": "https://notebooks.example, https://*.corp.example"}
    )
    policy = OriginPolicy.of(config.origins)
    assert policy.allows("https://notebooks.example")
    assert policy.allows("https://lab.corp.example")
    assert not policy.allows("https://corp.example.evil")
    assert policy.allows("http://localhost:1")  # the defaults stay
    assert OriginPolicy.of(origins_from_env({"OLLAMA_ORIGINS": "*"})).allows("http://any")


@pytest.mark.parametrize(
    "name",
    ["llama3.2", "llama3.2:1b", "library/llama3.2:latest", "registry.ollama.ai/library/x:y",
     "host:5000/ns/model:tag", "_under", "a" * 80],
)  # fmt: skip
def test_names_ollama_accepts(name: str) -> None:
    assert valid_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "bad name", "../x", "x/", "/x", ":tag", "x:", "a" * 81, "ns.dot/model", "-x",
     "x:t/a", "a/b/c/d", "ünïcode"],
)  # fmt: skip
def test_names_ollama_refuses(name: str) -> None:
    assert not valid_name(name)


def test_null_options_are_dropped_and_others_still_checked() -> None:
    assert options_field({"options": {"temperature": None, "top_k": 3}}) == {"top_k": 3}
    with pytest.raises(ApiError, match='"top_k" must be of type integer'):
        options_field({"options": {"top_k": "three"}})


def test_schemas_within_bounds_pass() -> None:
    check_schema(
        {
            "title": "Pick", "type": "object", "description": "any annotation is fine",
            "properties": {
                "color": {"enum": ["red", "blue"]},
                "note": {"anyOf": [{"type": "string", "maxLength": MAX_REPEAT}, {"type": "null"}]},
                "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "maxItems": 5},
            },
            "$defs": {"tag": {"type": "string", "pattern": "^[a-z]{1,20}$"}},
            "required": ["color"], "additionalProperties": False,
        }
    )  # fmt: skip


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "string", "maxLength": 2000}, "maxLength"),
        ({"type": "string", "minLength": -1}, "minLength"),
        ({"type": "array", "minItems": MAX_REPEAT + 1}, "minItems"),
        ({"properties": {"a": {"type": "string", "pattern": "x{1,999}"}}}, "pattern"),
        ({"not": {"type": "string"}}, "not"),
        ({"items": {"uniqueItems": True}}, "uniqueItems"),
        ({"$ref": "http://example.com/s.json"}, "$ref"),
        ({"anyOf": {"type": "string"}}, "anyOf"),
    ],
)
def test_schemas_the_grammar_cannot_take_are_refused_by_keyword(
    schema: dict[str, object], keyword: str
) -> None:
    with pytest.raises(SchemaError, match=re.escape(f'"{keyword}"')):
        check_schema(schema)


def test_deep_schemas_are_refused() -> None:
    schema: dict[str, object] = {"type": "string"}
    for _ in range(40):
        schema = {"type": "array", "items": schema}
    with pytest.raises(SchemaError, match="nested deeper"):
        check_schema(schema)


class _Exhausted:
    """A listening socket whose first ``accept()`` calls fail as if out of descriptors."""

    def __init__(self, sock: socket.socket, failures: int) -> None:
        self._sock = sock
        self.failures = failures

    def fileno(self) -> int:
        return self._sock.fileno()

    def accept(self) -> tuple[socket.socket, object]:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return self._sock.accept()


async def test_accept_backs_off_on_emfile_and_logs_rarely(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ollama_nb.serving")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    flaky = _Exhausted(listener, failures=6)
    accepted = asyncio.Event()
    conns: list[socket.socket] = []

    def on_connection(conn: socket.socket, address: object) -> None:
        conns.append(conn)
        accepted.set()

    loop = AcceptLoop(flaky, on_connection, clock=lambda: 0.0)  # type: ignore[arg-type]
    client = socket.create_connection(listener.getsockname())
    try:
        await asyncio.wait_for(accepted.wait(), timeout=60)
    finally:
        loop.close()
        client.close()
        listener.close()
        for conn in conns:
            conn.close()
    assert flaky.failures == 0
    warnings = [r for r in caplog.records if "cannot accept connections" in r.getMessage()]
    assert len(warnings) == 1  # six refusals, one line (the clock never moved on)


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def test_bodies_over_the_limit_get_a_413_in_words() -> None:
    with StandinServer(StandinConfig(max_body_bytes=1024)) as server:
        declared = _exchange(
            server.port,
            b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000000\r\n\r\n",
        )
        head = b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunked = _exchange(server.port, head + b"".join(b"100\r\n" + b"x" * 256 + b"\r\n"
                                                         for _ in range(5)))  # fmt: skip
        small = httpx.post(f"{server.url}/api/show", json={"model": "llama3.2"})
    for answer in (declared, chunked):
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert "request body is larger than this server accepts (1024 bytes)" in body["error"]
    assert small.status_code == 200  # under the limit, served as before
