"""Telemetry: every request's figures in a local SQLite file, and reports on them.

The runtime owns the store (``runtime.telemetry``, a metrics sink it attaches
when it first builds its ports). The functions here read a store back as
DataFrames, tables and charts; ``ollama_nb.metrics()``, ``summary()``,
``projects()``, ``usage()`` and ``report()`` call them with the process
runtime's store. Nothing here knows the runtime: the store and the current
time come in as arguments.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .store import (
    DB_NAME,
    DEFAULT_MAX_BYTES,
    DEFAULT_RETENTION_DAYS,
    Retention,
    TelemetryStore,
)

if TYPE_CHECKING:
    # pandas and matplotlib load only when a report is asked for, so building
    # the store on the first request stays cheap.
    import pandas as pd

    from .performance import PerformanceReport
    from .queries import Since

__all__ = [
    "DB_NAME",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_RETENTION_DAYS",
    "Retention",
    "TelemetryStore",
    "metrics",
    "projects",
    "report",
    "summary",
    "usage",
]


def metrics(
    store: TelemetryStore,
    since: Since = None,
    model: str | None = None,
    project: str | None = None,
    *,
    history: bool = False,
    now: float | None = None,
) -> pd.DataFrame:
    """Every recorded request matching the filters, one row each, oldest first.

    ``since`` is a look-back ("30m", "1h", "7d", a ``timedelta``) or a date/time
    measured back from ``now`` (default: the wall clock); ``model`` matches as
    Ollama does (``llama3.2`` is ``llama3.2:latest``); ``project`` matches the
    project label or the notebook path. ``history=True`` adds the stored prompt
    and response (empty when history logging was off).
    """
    from .queries import load_events

    return load_events(
        store,
        since=since,
        model=model,
        project=project,
        history=history,
        now=time.time() if now is None else now,
    )


def summary(
    store: TelemetryStore,
    since: Since = None,
    model: str | None = None,
    project: str | None = None,
    *,
    now: float | None = None,
) -> pd.DataFrame:
    """The per-model table ``%ollama metrics`` shows (see ``reports.model_summary``)."""
    from .reports import model_summary

    return model_summary(metrics(store, since, model, project, now=now))


def projects(
    store: TelemetryStore, since: Since = None, *, now: float | None = None
) -> pd.DataFrame:
    """Usage per project, notebook and model (see ``reports.project_summary``)."""
    from .reports import project_summary

    return project_summary(metrics(store, since, now=now))


def usage(
    store: TelemetryStore,
    since: Since = None,
    *,
    by: str = "project",
    freq: str = "D",
    now: float | None = None,
) -> pd.DataFrame:
    """Requests per period and per project (or notebook, model): a table to plot or pivot."""
    from .reports import usage_over_time

    return usage_over_time(metrics(store, since, now=now), by=by, freq=freq)


def report(
    store: TelemetryStore,
    since: Since = None,
    model: str | None = None,
    project: str | None = None,
    *,
    server_profile: str | None = None,
    now: float | None = None,
) -> PerformanceReport:
    """Tables and charts for the matching requests; shows itself in a notebook, ``.to_html()`` saves it.

    ``server_profile`` names the tuning the server runs with now, shown beside the figures.
    """
    from .performance import build_report

    frame = metrics(store, since, model, project, now=now)
    chosen = [
        f"since {since}" if since is not None else None,
        f"model {model}" if model else None,
        f"project {project}" if project else None,
    ]
    filters = ", ".join(c for c in chosen if c) or "all requests"
    return build_report(frame, server_profile=server_profile, filters=filters)
