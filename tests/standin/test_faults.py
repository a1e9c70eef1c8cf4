"""Fault injection by header and through the admin endpoint."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from ollama_nb.testing import StandinHandle
from ollama_nb.testing.standin.faults import MIDSTREAM_ERROR, RUNNER_TERMINATED

BUSY = "server busy, please try again.  maximum pending requests exceeded"
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "a b c d e f"}]}


def test_error_midstream_after_k_tokens(client: httpx.Client) -> None:
    r = client.post(
        "/api/chat", json=CHAT,
        headers={"X-Standin-Fault": "error_midstream", "X-Standin-Fault-After": "2"},
    )  # fmt: skip
    assert r.status_code == 200
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert len(lines) == 3 and lines[-1] == {"error": MIDSTREAM_ERROR}
    assert all(x.get("done") is False for x in lines[:2])


def test_error_midstream_without_streaming_is_500(client: httpx.Client) -> None:
    r = client.post(
        "/api/chat", json={**CHAT, "stream": False}, headers={"X-Standin-Fault": "error_midstream"}
    )
    assert r.status_code == 500 and r.json() == {"error": MIDSTREAM_ERROR}


def test_error_midstream_fires_even_if_k_exceeds_reply(client: httpx.Client) -> None:
    r = client.post(
        "/api/generate", json={"model": "llama3.2", "prompt": "x"},
        headers={"X-Standin-Fault": "error_midstream", "X-Standin-Fault-After": "999"},
    )  # fmt: skip
    assert json.loads(r.text.splitlines()[-1]) == {"error": MIDSTREAM_ERROR}


def test_drop_closes_connection(client: httpx.Client, ollama_standin: StandinHandle) -> None:
    received: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream(
            "POST", "/api/chat", json=CHAT,
            headers={"X-Standin-Fault": "drop", "X-Standin-Fault-After": "3"},
        ) as r,
    ):  # fmt: skip
        for chunk in r.iter_lines():
            received.append(chunk)
    assert len(received) == 3
    assert ollama_standin.stats()["running"] == 0


def test_drop_on_non_streaming_endpoint(client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/api/tags", headers={"X-Standin-Fault": "drop"})


def test_http_500_and_503(client: httpx.Client) -> None:
    r = client.post("/api/chat", json=CHAT, headers={"X-Standin-Fault": "http_500"})
    assert (r.status_code, r.json()) == (500, {"error": RUNNER_TERMINATED})
    r = client.post("/api/embed", json={"model": "x"}, headers={"X-Standin-Fault": "http_503"})
    assert (r.status_code, r.json()) == (503, {"error": BUSY})


def test_stall_hangs_until_client_leaves(ollama_standin: StandinHandle) -> None:
    timeout = httpx.Timeout(5, read=0.3)
    with (
        httpx.Client(base_url=ollama_standin.url, timeout=timeout) as c,
        c.stream("POST", "/api/chat", json=CHAT, headers={"X-Standin-Fault": "stall"}) as r,
    ):
        assert r.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            r.read()
    while ollama_standin.stats()["running"]:  # freed once it sees us gone; pytest-timeout bounds it
        time.sleep(0.02)


def test_slow_load(ollama_standin: StandinHandle, client: httpx.Client) -> None:
    client.post("/api/chat", json={**CHAT, "stream": False})
    r = client.post(
        "/api/chat", json={**CHAT, "stream": False},
        headers={"X-Standin-Fault": "slow_load", "X-Standin-Fault-Seconds": "0.3"},
    )  # fmt: skip
    assert r.json()["load_duration"] >= 300_000_000


def test_unknown_fault_header_is_400(client: httpx.Client) -> None:
    r = client.post("/api/chat", json=CHAT, headers={"X-Standin-Fault": "meteor"})
    assert r.status_code == 400 and "meteor" in r.json()["error"]


def test_armed_faults_count_and_path(client: httpx.Client, ollama_standin: StandinHandle) -> None:
    ollama_standin.inject("http_503", count=2, path="/api/chat")
    assert client.get("/api/tags").status_code == 200
    codes = [client.post("/api/chat", json={**CHAT, "stream": False}).status_code for _ in range(3)]
    assert codes == [503, 503, 200]


def test_armed_fault_with_after(client: httpx.Client, ollama_standin: StandinHandle) -> None:
    ollama_standin.inject("error_midstream", after=1)
    lines = client.post("/api/chat", json=CHAT).text.splitlines()
    assert len(lines) == 2 and json.loads(lines[-1]) == {"error": MIDSTREAM_ERROR}
    assert ollama_standin.requests()[-1]["fault"] == "error_midstream"


def test_admin_fault_endpoint_validates(client: httpx.Client) -> None:
    assert client.post("/_standin/faults", json={"fault": "nope"}).status_code == 400
    assert client.post("/_standin/faults", json={"fault": "drop", "count": -1}).status_code == 400
    r = client.post("/_standin/faults", json={"fault": "drop", "count": 2})
    assert r.json()["armed"][0]["remaining"] == 2
    assert client.delete("/_standin/faults").json() == {"armed": []}


def test_pull_faults(client: httpx.Client) -> None:
    r = client.post(
        "/api/pull", json={"model": "moondream"},
        headers={"X-Standin-Fault": "error_midstream", "X-Standin-Fault-After": "3"},
    )  # fmt: skip
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert len(lines) == 4 and lines[-1] == {"error": MIDSTREAM_ERROR}
    tags = {m["name"] for m in client.get("/api/tags").json()["models"]}
    assert "moondream:latest" not in tags


def test_reset_disarms(client: httpx.Client, ollama_standin: StandinHandle) -> None:
    ollama_standin.inject("http_500", count=5)
    ollama_standin.reset()
    assert client.get("/api/tags").status_code == 200
    assert ollama_standin.requests() == [
        entry for entry in ollama_standin.requests() if entry["path"] == "/api/tags"
    ]
