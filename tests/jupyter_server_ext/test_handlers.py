"""The /ollama-nb/ endpoints on a real Jupyter server, against the stand-in over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.testing.pytest_plugin import StandinFactory
from ollama_nb.testing.standin import STANDIN_VERSION, StandinHandle, StandinServer

from .conftest import Api, make_runtime


def test_status_reports_running_server(api: Api, runtime: Runtime) -> None:
    status = api.get("status")
    assert status["state"] == "running"
    assert status["reachable"] is True
    assert status["version"] == STANDIN_VERSION
    assert status["host"] == runtime.settings.ollama_host.base_url
    assert status["local"] is True
    assert status["breaker"] == "closed"
    assert status["loaded"] == []
    assert status["error"] is None


def test_status_lists_loaded_models_with_memory(api: Api) -> None:
    api.post("models/warm", {"model": "llama3.2"})
    [loaded] = api.get("status")["loaded"]
    assert loaded["name"] == "llama3.2:latest"
    assert loaded["size_bytes"] > 0
    assert 0.0 <= loaded["gpu_share"] <= 1.0


def test_status_when_server_is_gone(api: Api, tmp_path: Any) -> None:
    server = StandinServer().start()
    down = make_runtime(server.url, tmp_path)
    previous = set_runtime(down)
    try:
        assert api.get("status")["state"] == "running"
        server.stop()
        status = api.get("status")
    finally:
        set_runtime(previous)
        down.close()
        server.stop()
    assert status["state"] == "unreachable"
    assert status["reachable"] is False
    assert status["version"] is None
    assert status["loaded"] == []


def test_models_have_capabilities_and_loaded_flag(api: Api) -> None:
    api.post("models/warm", {"model": "gemma3:4b"})
    models = {m["name"]: m for m in api.get("models")["models"]}
    expected = {"llama3.2:latest", "qwen3:0.6b", "gemma3:4b", "nomic-embed-text:latest"}
    assert expected <= set(models)
    assert "vision" in models["gemma3:4b"]["capabilities"]
    assert "embedding" in models["nomic-embed-text:latest"]["capabilities"]
    assert models["gemma3:4b"]["loaded"] is True
    assert models["llama3.2:latest"]["loaded"] is False
    assert models["llama3.2:latest"]["parameter_size"] == "3.2B"


def test_ps_follows_warm_and_unload(api: Api) -> None:
    assert api.get("ps")["models"] == []
    api.post("models/warm", {"model": "qwen3:0.6b"})
    assert [m["name"] for m in api.get("ps")["models"]] == ["qwen3:0.6b"]
    unloaded = api.post("models/unload", {"model": "qwen3:0.6b"})
    assert unloaded["ok"] is True
    assert unloaded["model"] == "qwen3:0.6b"
    assert api.get("ps")["models"] == []


def test_warm_unknown_model_is_a_clear_error(api: Api) -> None:
    code, body = api.call("POST", "models/warm", {"model": "nope:1b"})
    assert code == 404
    assert "nope:1b" in body["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Name the model"),
        ({"model": ""}, "Name the model"),
        ({"model": 3}, "Name the model"),
        ({"model": "llama3.2", "extra": 1}, "Unknown field 'extra'"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_action_bodies_are_refused(api: Api, body: object, message: str) -> None:
    code, reply = api.call("POST", "models/warm", body)
    assert code == 400
    assert message in reply["error"]


def test_non_json_body_is_refused(api: Api) -> None:
    code, reply = api.call("POST", "models/unload", raw="{not json")
    assert code == 400
    assert reply["error"] == "The request body is not JSON."


def test_a_request_cannot_choose_the_ollama_host(
    api: Api, ollama_standin: StandinHandle, ollama_standin_factory: StandinFactory
) -> None:
    elsewhere = ollama_standin_factory()
    code, reply = api.call("GET", "status", params={"host": elsewhere.url})
    assert code == 400
    assert "OLLAMA_HOST" in reply["error"]
    code, reply = api.call("POST", "models/warm", {"model": "llama3.2", "host": elsewhere.url})
    assert (code, "OLLAMA_HOST" in reply["error"]) == (400, True)
    code, _ = api.call("GET", "models", params={"url": elsewhere.url})
    assert code == 400
    # Refused before anything was sent anywhere: neither server saw a request.
    assert elsewhere.requests() == []
    assert ollama_standin.requests() == []


def test_other_query_arguments_are_ignored(api: Api) -> None:
    # JupyterLab's ServerConnection adds a bare cache-busting number to every GET.
    assert api.get("ps", params={"1795817217258": ""})["models"] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "status"),
        ("GET", "models"),
        ("GET", "ps"),
        ("GET", "metrics"),
        ("POST", "server/start"),
        ("POST", "server/stop"),
        ("POST", "models/warm"),
        ("POST", "models/unload"),
    ],
)
def test_unauthenticated_requests_are_refused(
    jp_serverapp: Any,
    jp_base_url: str,
    jp_asyncio_loop: asyncio.AbstractEventLoop,
    http_server_client: Any,
    ollama_standin: StandinHandle,
    method: str,
    path: str,
) -> None:
    body = json.dumps({"model": "llama3.2"}) if method == "POST" else None
    with pytest.raises(HTTPClientError) as caught:
        jp_asyncio_loop.run_until_complete(
            http_server_client.fetch(f"{jp_base_url}ollama-nb/{path}", method=method, body=body)
        )
    assert caught.value.code == 403
    assert ollama_standin.requests() == []


def test_remote_host_hides_start_and_stop(api: Api, tmp_path: Any) -> None:
    # ".invalid" never resolves (RFC 2606), and the action endpoints send nothing anyway.
    remote = make_runtime("http://ollama.invalid:11434", tmp_path)
    previous = set_runtime(remote)
    try:
        for action in ("start", "stop"):
            reply = api.post(f"server/{action}")
            assert reply["ok"] is False
            assert reply["available"] is False
            assert "not on this machine" in reply["reason"]
    finally:
        set_runtime(previous)
        remote.close()


def test_start_stop_on_local_host_follow_the_manager(api: Api) -> None:
    status = api.get("status")
    assert status["manager"]["available"] is True
    # The stand-in was not started by ollama_nb: the manager must refuse to stop it.
    code, reply = api.call("POST", "server/stop")
    assert code == 409
    assert reply["error"]
    assert api.get("status")["state"] == "running"


def test_metrics_and_status_show_recorded_requests(api: Api, runtime: Runtime) -> None:
    assert api.get("metrics")["requests"] == 0
    store = runtime.telemetry
    api.post("models/warm", {"model": "llama3.2"})
    runtime.run(lambda ports: _chat(ports, "qwen3:0.6b"))
    assert store.flush()
    reply = api.get("metrics")
    assert (reply["ok"], reply["available"], reply["requests"]) == (True, True, 2)
    assert [m["model"] for m in reply["models"]] == ["llama3.2:latest", "qwen3:0.6b"]
    assert reply["last"]["model"] == "qwen3:0.6b"
    assert reply["last"]["decode_tps"] > 0
    assert reply["series"][-1]["model"] == "qwen3:0.6b"
    assert api.get("status")["last"] == reply["last"]


async def _chat(ports: Any, model: str) -> object:
    from ollama_nb.application.use_cases import complete
    from ollama_nb.domain import ChatMessage, ChatRequest, ModelName

    request = ChatRequest(model=ModelName(model), messages=(ChatMessage("user", "hello"),))
    return await complete(ports, request)


def test_metrics_endpoint_rejects_a_bad_window(api: Api) -> None:
    code, reply = api.call("GET", "metrics", params={"since": "yesterday-ish"})
    assert code == 400
    assert reply["error"]
