"""Stand-in-only endpoints under ``/_standin/`` (a real Ollama server has none of these).

They let a test arm faults for clients that cannot send headers, read what reached the
server, reset between tests, and watch slot and queue usage.
"""

from __future__ import annotations

from ...serving.api import Route
from ...serving.base import BaseHandler
from ...serving.wire import ApiError, parse_body
from .faults import FaultSpecError
from .state import StandinState


class _AdminHandler(BaseHandler):
    """Admin endpoints share the Host check but never log themselves or take faults."""

    state: StandinState


class FaultsHandler(_AdminHandler):
    """``POST`` arms a fault, ``GET`` lists armed faults, ``DELETE`` disarms all."""

    def get(self) -> None:
        """Armed faults in the order they will be used."""
        self.send_json({"armed": [a.as_json() for a in self.state.faults.armed()]})

    def post(self) -> None:
        """Arm ``{"fault", "count"=1, "path"=None, "after"=0, "seconds"=None}``."""
        try:
            entry = self.state.faults.arm(parse_body(self.request.body))
        except ApiError as exc:
            self.send_error_json(exc)
            return
        except FaultSpecError as exc:
            self.send_error_json(ApiError(400, str(exc)))
            return
        self.send_json(
            {"armed": [a.as_json() for a in self.state.faults.armed()], "added": entry.as_json()}
        )

    def delete(self) -> None:
        """Disarm everything."""
        self.state.faults.clear()
        self.send_json({"armed": []})


class RequestsHandler(_AdminHandler):
    """``GET /_standin/requests[?path=/api/chat]``: the last 1000 requests, oldest first."""

    def get(self) -> None:
        """Bodies are logged with images reduced to format, width, height and size."""
        path = self.get_query_argument("path", None)
        entries = [e for e in self.state.log if path is None or e["path"] == path]
        self.send_json({"requests": entries})


class ResetHandler(_AdminHandler):
    """``POST /_standin/reset``: the state of a freshly started server (slots excepted)."""

    async def post(self) -> None:
        """Clear faults, the log, loaded models and peaks; restore the installed models."""
        await self.state.reset()
        self.send_json({"status": "reset"})


class StatsHandler(_AdminHandler):
    """``GET /_standin/stats``: slot and queue usage."""

    def get(self) -> None:
        """Current and peak running/waiting counts plus the loaded models."""
        st = self.state
        self.send_json(
            {
                "running": st.slots.running,
                "waiting": st.slots.waiting,
                "max_running_seen": st.slots.max_running_seen,
                "max_waiting_seen": st.slots.max_waiting_seen,
                "max_in_flight_seen": st.slots.max_in_flight_seen,
                "num_parallel": st.config.num_parallel,
                "max_queue": st.config.max_queue,
                "loaded": [e.card.name for e in st.residency.entries()],
                "requests_logged": len(st.log),
            }
        )


def admin_routes(state: StandinState) -> list[Route]:
    """The route table for ``/_standin/*``."""
    kwargs = {"state": state}
    return [
        (r"/_standin/faults", FaultsHandler, kwargs),
        (r"/_standin/requests", RequestsHandler, kwargs),
        (r"/_standin/reset", ResetHandler, kwargs),
        (r"/_standin/stats", StatsHandler, kwargs),
    ]
