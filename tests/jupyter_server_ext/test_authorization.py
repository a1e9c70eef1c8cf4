"""Jupyter's authorizer guards every /ollama-nb/ endpoint, as it guards /api/contents.

A deployment (JupyterHub with sharing, read-only collaborators) configures
``ServerApp.authorizer_class``; these tests run a real jupyter_server with two
such authorizers and call every route the extension registers.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from jupyter_server.auth.authorizer import Authorizer

from ollama_nb.jupyter_server_ext.handlers import AUTH_RESOURCE
from ollama_nb.runtime import Runtime
from ollama_nb.testing.standin import StandinHandle

from .conftest import Api

READS = ("status", "models", "ps", "metrics")
WRITES = ("server/start", "server/stop", "models/warm", "models/unload")


class DenyAll(Authorizer):
    """Refuses everything, and remembers what each handler asked for."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        self.seen.append((action, resource))
        return False


class ReadOnly(Authorizer):
    """Lets a user look but not change anything (a read-only collaborator)."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        self.seen.append((action, resource))
        return action == "read"


@pytest.fixture
def authorizer(request: pytest.FixtureRequest) -> type[Authorizer]:
    chosen: type[DenyAll | ReadOnly] = request.param
    chosen.seen.clear()
    return chosen


@pytest.fixture
def jp_server_config(runtime: Runtime, authorizer: type[Authorizer]) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"ollama_nb.jupyter_server_ext": True},
            "authorizer_class": authorizer,
        }
    }


def _call_everything(api: Api) -> dict[str, int]:
    codes = {}
    for path in READS:
        codes[f"GET {path}"] = api.call("GET", path)[0]
    for path in WRITES:
        body = {"model": "llama3.2"} if path.startswith("models/") else {}
        codes[f"POST {path}"] = api.call("POST", path, body)[0]
    return codes


@pytest.mark.parametrize("authorizer", [DenyAll], indirect=True)
def test_deny_all_gets_403_on_every_route_and_nothing_reaches_ollama(
    api: Api, ollama_standin: StandinHandle
) -> None:
    ollama_standin.reset()
    codes = _call_everything(api)

    assert codes == dict.fromkeys(codes, 403), codes
    assert len(codes) == 8
    assert set(DenyAll.seen) == {("read", AUTH_RESOURCE), ("write", AUTH_RESOURCE)}
    assert ollama_standin.requests() == []  # not even a status probe went out
    # The reply is one line the front end can show, not Tornado's HTML page.
    code, body = api.call("POST", "models/unload", {"model": "llama3.2"})
    assert code == 403
    assert "does not allow you to write ollama_nb" in body["error"]


@pytest.mark.parametrize("authorizer", [DenyAll], indirect=True)
def test_deny_all_is_asked_before_a_host_argument_is_judged(api: Api) -> None:
    code, _ = api.call("GET", "status", params={"host": "10.0.0.1"})
    assert code == 403


@pytest.mark.parametrize("authorizer", [ReadOnly], indirect=True)
def test_read_only_user_sees_status_but_cannot_stop_or_unload(
    api: Api, ollama_standin: StandinHandle
) -> None:
    ollama_standin.reset()
    assert api.get("status")["state"] == "running"
    assert "models" in api.get("models")
    assert api.get("ps")["models"] == []
    codes = _call_everything(api)

    assert {k: v for k, v in codes.items() if k.startswith("GET")} == {
        f"GET {p}": 200 for p in READS
    }
    assert {k: v for k, v in codes.items() if k.startswith("POST")} == {
        f"POST {p}": 403 for p in WRITES
    }
    assert not any(r["path"] in ("/api/generate", "/api/chat") for r in ollama_standin.requests())
    assert ("write", AUTH_RESOURCE) in ReadOnly.seen
