"""Authenticated JSON endpoints under ``<base_url>/ollama-nb/`` for the Lab front end.

Security rules, all enforced here:
- every method needs Jupyter's authentication (``@web.authenticated``) and then
  its authorizer (``@authorized``) for the ``ollama_nb`` resource: reading
  status, models, running models and metrics is ``read``; starting or stopping
  the server and loading or unloading a model is ``write``. On JupyterHub with
  sharing or read-only collaborators, a user the deployment's authorizer does
  not allow gets 403 like on ``/api/contents``; ``APIHandler`` checks the XSRF
  token on POST;
- nothing proxies: each endpoint calls one fixed use case or manager operation;
- the Ollama host comes from the server's configuration only. A request that
  tries to name one (query or body) is refused, so a page cannot aim the
  Jupyter server at another machine.

Work that talks to Ollama runs on the runtime's background loop and blocking
manager operations in a worker thread, so tornado's loop never waits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar, cast

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..application import use_cases
from ..domain import (
    ConfigurationError,
    GenerateRequest,
    InvalidInputError,
    KeepAlive,
    ModelName,
    ModelNotFoundError,
    OllamaNbError,
)
from ..runtime import Runtime
from . import features, views

NAMESPACE = "ollama-nb"
#: The resource name Jupyter authorizers see for every endpoint here.
AUTH_RESOURCE = "ollama_nb"

#: Names a client might use to point us at another server; always refused.
_HOST_KEYS = frozenset({"host", "url", "base_url", "ollama_host", "server", "endpoint"})


_Method = TypeVar("_Method", bound=Callable[..., Coroutine[Any, Any, None]])


def _allowed(action: Literal["read", "write"]) -> Callable[[_Method], _Method]:
    """jupyter_server's ``authorized`` for ``action``, typed (its own signature is not)."""
    return cast("Callable[[_Method], _Method]", authorized(action))


class _Handler(APIHandler):
    """Shared checks and the JSON reply format: ``{"ok": ..., ...}`` or ``{"error": ...}``."""

    auth_resource = AUTH_RESOURCE

    def runtime(self) -> Runtime:
        provide: Callable[[], Runtime] = self.settings["ollama_nb_runtime"]
        return provide()

    def refuse_host_choice(self) -> None:
        """Called first in each method, so only an authorized user learns what is refused.

        Other arguments are ignored: ServerConnection adds a cache-busting one to GETs.
        """
        if set(self.request.query_arguments) & _HOST_KEYS:
            raise web.HTTPError(400, reason=_host_refusal())

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors as ``{"error": message}`` so the front end shows one line, not HTML."""
        self.set_header("Content-Type", "application/json")
        reason = self._reason
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if isinstance(error, web.HTTPError) and error.reason:
            reason = error.reason
        elif status_code == 403:
            reason = _forbidden(self.request.method or "GET")
        self.finish(json.dumps({"error": reason, "status": status_code}))

    def body_object(self, allowed: frozenset[str]) -> dict[str, Any]:
        """The JSON body as an object holding only ``allowed`` keys."""
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except ValueError:
            raise web.HTTPError(400, reason="The request body is not JSON.") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, reason="The request body must be a JSON object.")
        if set(body) & _HOST_KEYS:
            raise web.HTTPError(400, reason=_host_refusal())
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise web.HTTPError(400, reason=f"Unknown field {unknown[0]!r}.")
        return body

    def model_argument(self, body: dict[str, Any]) -> ModelName:
        value = body.get("model")
        if not isinstance(value, str) or not value.strip():
            raise web.HTTPError(400, reason='Name the model: {"model": "llama3.2"}.')
        try:
            return ModelName(value)
        except OllamaNbError as exc:
            raise web.HTTPError(400, reason=str(exc)) from None

    def reply(self, payload: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload))


def _host_refusal() -> str:
    return (
        "The Ollama host is set in the Jupyter server's configuration (OLLAMA_HOST) "
        "and cannot be chosen per request."
    )


def _forbidden(method: str) -> str:
    action = "read" if method in ("GET", "HEAD") else "write"
    return (
        f"This Jupyter server does not allow you to {action} ollama_nb "
        f"(resource {AUTH_RESOURCE!r}); ask its administrator."
    )


def _unavailable(reason: str) -> dict[str, Any]:
    return {"ok": False, "available": False, "reason": reason}


class StatusHandler(_Handler):
    """Everything the status bar shows, in one request."""

    @web.authenticated
    @_allowed("read")
    async def get(self) -> None:
        self.refuse_host_choice()
        runtime = self.runtime()
        settings = runtime.settings
        probe = await runtime.arun(views.probe)
        manager_ok, manager_reason = features.manager_availability(runtime)
        stopped = bool(self.settings.get("ollama_nb_stopped")) and not probe["reachable"]
        if probe["reachable"]:
            self.settings["ollama_nb_stopped"] = False
        try:
            last = (await asyncio.to_thread(features.metrics_summary, runtime))["last"]
        except features.FeatureUnavailable:
            last = None
        except Exception as exc:  # a broken metrics file must not blank the status bar
            self.log.warning("ollama_nb: metrics summary failed: %s", exc)
            last = None
        self.reply(
            {
                "state": "running"
                if probe["reachable"]
                else ("stopped" if stopped else "unreachable"),
                "reachable": probe["reachable"],
                "version": probe["version"],
                "error": probe["error"],
                "host": settings.ollama_host.base_url,
                "local": settings.ollama_host.is_local,
                "loaded": probe["loaded"],
                "breaker": use_cases.health(runtime.ports).breaker,
                "profile": await asyncio.to_thread(features.active_profile, runtime),
                "default_model": settings.default_model,
                "last": last,
                "manager": {"available": manager_ok, "reason": manager_reason},
            }
        )


class ModelsHandler(_Handler):
    @web.authenticated
    @_allowed("read")
    async def get(self) -> None:
        self.refuse_host_choice()
        try:
            self.reply(await self.runtime().arun(views.installed))
        except OllamaNbError as exc:
            self.reply({"error": str(exc)}, status=502)


class RunningHandler(_Handler):
    @web.authenticated
    @_allowed("read")
    async def get(self) -> None:
        self.refuse_host_choice()
        try:
            self.reply(await self.runtime().arun(views.running))
        except OllamaNbError as exc:
            self.reply({"error": str(exc)}, status=502)


class MetricsHandler(_Handler):
    @web.authenticated
    @_allowed("read")
    async def get(self) -> None:
        self.refuse_host_choice()
        since = self.get_query_argument("since", features.METRICS_WINDOW)
        try:
            summary = await asyncio.to_thread(features.metrics_summary, self.runtime(), since)
        except features.FeatureUnavailable as exc:
            self.reply(_unavailable(str(exc)))
            return
        except OllamaNbError as exc:  # e.g. a malformed ``since``
            self.reply({"error": str(exc)}, status=400)
            return
        self.reply({"ok": True, "available": True, **summary})


class ServerActionHandler(_Handler):
    """``POST /ollama-nb/server/(start|stop)``: through the manager and its ownership rules."""

    @web.authenticated
    @_allowed("write")
    async def post(self, action: str) -> None:
        self.refuse_host_choice()
        self.body_object(frozenset())
        runtime = self.runtime()
        try:
            result = await asyncio.to_thread(features.call_manager, runtime, action)
        except features.FeatureUnavailable as exc:
            self.reply(_unavailable(str(exc)))
            return
        except OllamaNbError as exc:  # e.g. "not started by ollama_nb: not stopping it"
            self.reply({"ok": False, "available": True, "error": str(exc)}, status=409)
            return
        self.settings["ollama_nb_stopped"] = action == "stop"
        self.reply({"ok": True, "available": True, "message": result})


class ModelActionHandler(_Handler):
    """``POST /ollama-nb/models/(warm|unload)`` with ``{"model": NAME}``."""

    @web.authenticated
    @_allowed("write")
    async def post(self, action: str) -> None:
        self.refuse_host_choice()
        runtime = self.runtime()
        model = self.model_argument(self.body_object(frozenset({"model"})))
        try:
            if action == "warm":
                message = await asyncio.to_thread(
                    features.call_manager, runtime, "warm", model.value, local_only=False
                )
            else:
                message = await runtime.arun(_load_or_unload(model, warm=action == "warm"))
        except features.FeatureUnavailable as exc:
            self.reply(_unavailable(str(exc)))
            return
        except OllamaNbError as exc:
            self.reply({"ok": False, "error": str(exc)}, status=_status_for(exc))
            return
        self.reply({"ok": True, "model": model.value, "message": message})


def _load_or_unload(
    model: ModelName, *, warm: bool
) -> Callable[[use_cases.Ports], Coroutine[Any, Any, str]]:
    """An empty generate: with the configured keep_alive it loads the model, with 0 unloads it."""

    async def run(ports: use_cases.Ports) -> str:
        keep_alive = None if warm else KeepAlive(0)
        request = GenerateRequest(model=model, allow_empty=True, keep_alive=keep_alive)
        result = await use_cases.complete(ports, request, stream=False)
        if not warm:
            return f"Unloaded {model.value}."
        return f"Loaded {model.value} in {result.timings.load_ns / 1e9:.2f} s."

    return run


def _status_for(error: OllamaNbError) -> int:
    """The user's mistake is a 4xx; Ollama failing is a 502 (bad gateway)."""
    if isinstance(error, ModelNotFoundError):
        return 404
    if isinstance(error, InvalidInputError | ConfigurationError):
        return 400
    return 502


def setup_handlers(web_app: web.Application, runtime: Runtime | Callable[[], Runtime]) -> None:
    """Register the routes. ``runtime`` is the runtime, or what makes it on the first request.

    The extension passes ``get_runtime`` itself: a bad setting then shows on the
    status bar as an error, not as an extension that failed to load.
    """
    if isinstance(runtime, Runtime):
        made = runtime
        web_app.settings["ollama_nb_runtime"] = lambda: made
    else:
        web_app.settings["ollama_nb_runtime"] = runtime
    base = url_path_join(web_app.settings.get("base_url", "/"), NAMESPACE)
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "status"), StatusHandler),
            (url_path_join(base, "models"), ModelsHandler),
            (url_path_join(base, "ps"), RunningHandler),
            (url_path_join(base, "metrics"), MetricsHandler),
            (url_path_join(base, r"server/(start|stop)"), ServerActionHandler),
            (url_path_join(base, r"models/(warm|unload)"), ModelActionHandler),
        ],
    )
