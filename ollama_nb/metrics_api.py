"""The metrics of this process's runtime, for code: ``ollama_nb.metrics()`` and friends.

Thin: each function reads the runtime's telemetry store through
``ollama_nb.telemetry`` with the runtime's clock as "now", so a look-back like
``since="1h"`` means the same here as in ``%ollama metrics``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import telemetry
from .runtime import Runtime, get_runtime

if TYPE_CHECKING:
    import pandas as pd

    from .telemetry.performance import PerformanceReport
    from .telemetry.queries import Since

__all__ = ["metrics", "projects", "report", "summary", "usage"]


def metrics(
    since: Since = None,
    model: str | None = None,
    project: str | None = None,
    *,
    history: bool = False,
    runtime: Runtime | None = None,
) -> pd.DataFrame:
    """Every recorded request matching the filters, one row each, oldest first.

    ``since`` is a look-back ("30m", "1h", "7d", a ``timedelta``) or a date/time;
    ``model`` matches as Ollama does (``llama3.2`` is ``llama3.2:latest``);
    ``project`` matches the project label or the notebook path. ``history=True``
    adds the stored prompt and response (empty when history logging was off).
    """
    runtime = runtime or get_runtime()
    return telemetry.metrics(
        runtime.telemetry, since, model, project, history=history, now=runtime.clock.time()
    )


def summary(
    since: Since = None,
    model: str | None = None,
    project: str | None = None,
    *,
    runtime: Runtime | None = None,
) -> pd.DataFrame:
    """The per-model table ``%ollama metrics`` shows: requests, errors, latency, TTFT, tokens/s."""
    runtime = runtime or get_runtime()
    return telemetry.summary(runtime.telemetry, since, model, project, now=runtime.clock.time())


def projects(since: Since = None, *, runtime: Runtime | None = None) -> pd.DataFrame:
    """Usage per project, notebook and model."""
    runtime = runtime or get_runtime()
    return telemetry.projects(runtime.telemetry, since, now=runtime.clock.time())


def usage(
    since: Since = None, *, by: str = "project", freq: str = "D", runtime: Runtime | None = None
) -> pd.DataFrame:
    """Requests per period (``freq`` "h", "D", "W") and per project, notebook or model."""
    runtime = runtime or get_runtime()
    return telemetry.usage(runtime.telemetry, since, by=by, freq=freq, now=runtime.clock.time())


def report(
    since: Since = None,
    model: str | None = None,
    project: str | None = None,
    *,
    runtime: Runtime | None = None,
) -> PerformanceReport:
    """Tables and charts for the matching requests; shows itself in a notebook, ``.to_html()`` saves it.

    When ollama_nb started the server, its tuning profile is shown beside the figures.
    """
    runtime = runtime or get_runtime()
    return telemetry.report(
        runtime.telemetry,
        since,
        model,
        project,
        server_profile=runtime.server_profile(),
        now=runtime.clock.time(),
    )
