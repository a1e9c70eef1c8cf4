"""The stand-in server: the real server with scripted models, faults, a request log and admin.

Tests start it in a daemon thread (its own loop, so it never touches the kernel's or
pytest's loop); ``python -m ollama_nb.testing.standin serve`` runs it in the main thread
until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...serving.api import Route
from ...serving.engine import Engine
from ...serving.server import Server
from ...serving.state import ServerState
from .admin import admin_routes
from .catalogue import SCRIPTED
from .config import StandinConfig
from .handlers import standin_api_routes
from .scripted import ScriptedEngine
from .state import StandinState


def default_engines(config: StandinConfig) -> dict[str, Engine]:
    """The engines every stand-in has: just the scripted one, named ``"scripted"``."""
    scripted = ScriptedEngine(
        tokens_per_second=config.tokens_per_second, load_seconds=config.load_seconds
    )
    return {SCRIPTED: scripted}


class StandinServer(Server):
    """A fake Ollama server speaking the documented REST API, plus ``/_standin/*``.

    Use ``with StandinServer(StandinConfig()) as server:`` (or :meth:`start`/:meth:`stop`)
    to run it on a background thread, or ``await server.serve_forever()`` on a loop you own.
    ``engines`` adds engines next to the scripted one; each model card names its engine.
    """

    config: StandinConfig

    def __init__(
        self, config: StandinConfig | None = None, *, engines: Mapping[str, Engine] | None = None
    ) -> None:
        config = config or StandinConfig()
        super().__init__(config, {**default_engines(config), **(engines or {})})

    def build_state(self) -> StandinState:
        """A server's state plus armed faults and the request log."""
        return StandinState(self.config, self._engines)

    def routes(self, state: ServerState) -> list[Route]:
        """Ollama's routes through the fault-aware handlers, then ``/_standin/*``."""
        assert isinstance(state, StandinState)  # made by build_state above
        return [*standin_api_routes(state), *admin_routes(state)]
