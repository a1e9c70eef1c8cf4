"""The pytest fixtures and the Python API they are built on."""

from __future__ import annotations

import os

import httpx
import pytest

import ollama_nb.testing as testing
from ollama_nb.testing import StandinConfig, StandinHandle, StandinServer
from ollama_nb.testing.pytest_plugin import StandinFactory


def test_public_api_is_pinned() -> None:
    assert set(testing.__all__) == {
        "ManualClock",
        "StandinConfig",
        "StandinHandle",
        "StandinServer",
    }


def test_fixture_is_reset_between_tests_part_one(ollama_standin: StandinHandle) -> None:
    ollama_standin.inject("http_500", count=10)
    httpx.get(f"{ollama_standin.url}/api/tags")


def test_fixture_is_reset_between_tests_part_two(ollama_standin: StandinHandle) -> None:
    assert httpx.get(f"{ollama_standin.url}/api/tags").status_code == 200
    assert [e["path"] for e in ollama_standin.requests()] == ["/api/tags"]


def test_fixture_leaves_environment_alone(ollama_standin: StandinHandle) -> None:
    assert os.environ.get("OLLAMA_HOST") != ollama_standin.host


def test_handle_address(ollama_standin: StandinHandle) -> None:
    assert ollama_standin.url == f"http://{ollama_standin.host}"
    assert ollama_standin.host.startswith("127.0.0.1:")


def test_factory_uses_custom_config(ollama_standin_factory: StandinFactory) -> None:
    handle = ollama_standin_factory(StandinConfig(num_parallel=4), max_queue=2)
    stats = handle.stats()
    assert (stats["num_parallel"], stats["max_queue"]) == (4, 2)


def test_server_context_manager_and_restart_errors() -> None:
    with StandinServer(StandinConfig()) as server:
        assert httpx.get(f"{server.url}/").text == "Ollama is running"
        with pytest.raises(RuntimeError):
            server.start()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/")


def test_port_unknown_before_start() -> None:
    with pytest.raises(RuntimeError):
        _ = StandinServer().url


def test_start_reports_bind_failures() -> None:
    with StandinServer() as first:
        clash = StandinServer(StandinConfig(port=first.port))
        with pytest.raises(RuntimeError, match="failed to start"):
            clash.start()


def test_custom_catalogue(ollama_standin_factory: StandinFactory) -> None:
    from ollama_nb.testing.standin import DEFAULT_INSTALLED

    handle = ollama_standin_factory(models=DEFAULT_INSTALLED[:1])
    names = [m["name"] for m in httpx.get(f"{handle.url}/api/tags").json()["models"]]
    assert names == ["llama3.2:latest"]
