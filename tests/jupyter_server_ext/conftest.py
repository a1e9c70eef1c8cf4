"""A real jupyter_server (pytest-jupyter) with our extension, in front of the stand-in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

# pytest-jupyter's fixtures (and its autouse loop and coroutine-collection hook)
# are imported here rather than registered with ``pytest_plugins``, so they apply
# to this folder only and leave pytest-asyncio in charge everywhere else.
from pytest_jupyter.jupyter_server import *  # noqa: F403
from tornado.httpclient import HTTPClientError, HTTPResponse

from ollama_nb.runtime import Runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing.pytest_plugin import RuntimeFactory
from ollama_nb.testing.standin import StandinHandle

Fetch = Callable[..., Awaitable[HTTPResponse]]


def make_runtime(host: str, tmp_path: Any) -> Runtime:
    # No retries and a short connect timeout: an unreachable server must answer fast.
    return Runtime(
        load_settings(
            host=host,
            data_dir=tmp_path / "data",
            retry_attempts=0,
            connect_timeout_s=2.0,
            request_log=False,
        )
    )


@pytest.fixture
def runtime(
    ollama_standin: StandinHandle, ollama_runtime_factory: RuntimeFactory, tmp_path: Any
) -> Runtime:
    """The process runtime, pointed at the stand-in, as the extension's handlers see it."""
    # No retries and a short connect timeout: an unreachable server must answer fast.
    return ollama_runtime_factory(
        ollama_standin.url, data_dir=tmp_path / "data", retry_attempts=0, connect_timeout_s=2.0
    )


@pytest.fixture
def jp_server_config(runtime: Runtime) -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"ollama_nb.jupyter_server_ext": True}}}


@dataclass
class Api:
    """Synchronous calls to ``/ollama-nb/...`` on the test server.

    pytest-jupyter serves on its own loop (``jp_asyncio_loop``); pytest-asyncio would
    run ``async def`` tests on another one, where the server never answers. So the
    tests stay synchronous and drive the server's loop through this helper.
    """

    fetch: Fetch
    loop: asyncio.AbstractEventLoop

    def call(self, method: str, path: str, body: object = None, **kwargs: Any) -> tuple[int, Any]:
        if method == "POST" and "raw" not in kwargs:
            kwargs["body"] = json.dumps(body if body is not None else {})
        elif "raw" in kwargs:
            kwargs["body"] = kwargs.pop("raw")
        try:
            response = self.loop.run_until_complete(
                self.fetch("ollama-nb", *path.split("/"), method=method, **kwargs)
            )
        except HTTPClientError as exc:
            assert exc.response is not None
            response = exc.response
        assert response.headers["Content-Type"].startswith("application/json")
        return response.code, json.loads(response.body)

    def get(self, path: str, **kwargs: Any) -> Any:
        code, data = self.call("GET", path, **kwargs)
        assert code == 200, data
        return data

    def post(self, path: str, body: object = None) -> Any:
        code, data = self.call("POST", path, body)
        assert code == 200, data
        return data


@pytest.fixture
def api(jp_fetch: Fetch, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Api:
    return Api(jp_fetch, jp_asyncio_loop)
