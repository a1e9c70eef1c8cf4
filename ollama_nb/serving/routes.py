"""Every route the server answers: Ollama's native API and its OpenAI-compatible one."""

from __future__ import annotations

from .api import Route, native_routes
from .openai import openai_routes
from .state import ServerState


def api_routes(state: ServerState) -> list[Route]:
    """``/``, ``/api/*`` and ``/v1/*``, as ``ollama serve`` routes them."""
    return [*native_routes(state), *openai_routes(state)]
