"""Telemetry: every request's figures in a local SQLite file, and reports on them.

``attach(runtime)`` plugs the store into the runtime's metrics sinks (the
runtime calls it when it first builds its ports); ``metrics()``, ``summary()``,
``usage()`` and ``report()`` read it back as DataFrames, tables and charts.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from .store import (
    DB_NAME,
    DEFAULT_MAX_BYTES,
    DEFAULT_RETENTION_DAYS,
    Retention,
    TelemetryStore,
)

if TYPE_CHECKING:
    # pandas and matplotlib load only when a report is asked for, so attaching
    # the store to the runtime on the first request stays cheap.
    import pandas as pd

    from ..runtime import Runtime
    from .performance import PerformanceReport
    from .queries import Since

__all__ = [
    "Retention",
    "TelemetryStore",
    "attach",
    "metrics",
    "projects",
    "report",
    "summary",
    "usage",
]

_attached: weakref.WeakKeyDictionary[Runtime, tuple[TelemetryStore, Callable[[], None]]] = (
    weakref.WeakKeyDictionary()
)
_attach_lock = threading.Lock()


def _retention(runtime: Runtime) -> Retention:
    settings = runtime.settings
    days = getattr(settings, "metrics_retention_days", DEFAULT_RETENTION_DAYS)
    max_mb = getattr(settings, "metrics_max_mb", None)
    max_bytes = DEFAULT_MAX_BYTES if max_mb is None else int(max_mb * 1024 * 1024)
    return Retention(max_age_days=days, max_bytes=max_bytes)


def attach(runtime: Runtime) -> TelemetryStore:
    """The runtime's metrics store, created and added as a sink on first call.

    Idempotent; if ``data_dir`` changed since, the old store is flushed and
    replaced by one in the new folder.
    """
    path = runtime.settings.data_dir / DB_NAME
    with _attach_lock:
        current = _attached.get(runtime)
        if current is not None and current[0].path == path:
            return current[0]
        if current is not None:
            store, remove = current
            remove()
            store.close()
        owner = weakref.ref(runtime)

        def history_on() -> bool:
            live = owner()
            return bool(live is not None and live.settings.history)

        def profile() -> str | None:
            from .context import active_server_profile

            live = owner()
            return None if live is None else active_server_profile(live)

        store = TelemetryStore(
            path, history=history_on, retention=_retention(runtime), server_profile=profile
        )
        _attached[runtime] = (store, runtime.add_sink(store))
        return store


def _store_and_now(runtime: Runtime | None) -> tuple[TelemetryStore, float]:
    if runtime is None:
        from ..runtime import get_runtime

        runtime = get_runtime()
    return attach(runtime), runtime.clock.time()


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
    from .queries import load_events

    store, now = _store_and_now(runtime)
    return load_events(store, since=since, model=model, project=project, history=history, now=now)


def summary(
    since: Since = None,
    model: str | None = None,
    project: str | None = None,
    *,
    runtime: Runtime | None = None,
) -> pd.DataFrame:
    """The per-model table ``%ollama metrics`` shows (see ``reports.model_summary``)."""
    from .reports import model_summary

    return model_summary(metrics(since, model, project, runtime=runtime))


def projects(since: Since = None, *, runtime: Runtime | None = None) -> pd.DataFrame:
    """Usage per project, notebook and model (see ``reports.project_summary``)."""
    from .reports import project_summary

    return project_summary(metrics(since, runtime=runtime))


def usage(
    since: Since = None, *, by: str = "project", freq: str = "D", runtime: Runtime | None = None
) -> pd.DataFrame:
    """Requests per period and per project (or notebook, model): a table to plot or pivot."""
    from .reports import usage_over_time

    return usage_over_time(metrics(since, runtime=runtime), by=by, freq=freq)


def report(
    since: Since = None,
    model: str | None = None,
    project: str | None = None,
    *,
    runtime: Runtime | None = None,
) -> PerformanceReport:
    """Tables and charts for the matching requests; shows itself in a notebook, ``.to_html()`` saves it."""
    from ..runtime import get_runtime
    from .context import active_server_profile
    from .performance import build_report

    runtime = runtime or get_runtime()
    frame = metrics(since, model, project, runtime=runtime)
    chosen = [
        f"since {since}" if since is not None else None,
        f"model {model}" if model else None,
        f"project {project}" if project else None,
    ]
    filters = ", ".join(c for c in chosen if c) or "all requests"
    return build_report(frame, server_profile=active_server_profile(runtime), filters=filters)
