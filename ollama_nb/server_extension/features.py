"""The optional features behind the Lab panel: the server manager and the metrics store.

Both live in other parts of the package and may be missing (an older install,
a trimmed build) or may not apply (the manager can only start a server on this
machine). Each is imported lazily, and its absence is an answer the front end
can show ("not available: why"), never a 500.
"""

from __future__ import annotations

import importlib
import math
from types import ModuleType
from typing import Any

from ..runtime import Runtime

Json = dict[str, Any]

#: How far back the metrics summary looks.
METRICS_WINDOW = "24h"
#: Points in the decode tokens/s series the sidebar charts.
SERIES_POINTS = 60


class FeatureUnavailable(Exception):
    """A feature this request needs is not installed or does not apply; ``str()`` says why."""


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# --- server manager -------------------------------------------------------------------


def manager_availability(runtime: Runtime) -> tuple[bool, str | None]:
    """Whether start/stop can be offered for the configured host, and why not."""
    host = runtime.settings.ollama_host
    if not host.is_local:
        return False, (
            f"The Ollama server at {host.base_url} is not on this machine: "
            "only a local server can be started or stopped from JupyterLab."
        )
    if _manager_module() is None:
        return False, "The ollama_nb server manager is not installed in this environment."
    return True, None


def _manager_module() -> ModuleType | None:
    return _import("ollama_nb.server.manager")


def _manager(runtime: Runtime) -> Any:
    module = _manager_module()
    get_manager = getattr(module, "get_manager", None) if module else None
    if not callable(get_manager):
        raise FeatureUnavailable("The ollama_nb server manager is not installed.")
    return get_manager(runtime)


def call_manager(runtime: Runtime, name: str, *args: Any, local_only: bool = True) -> str:
    """Run one manager operation and return its report as text (blocking: use a thread).

    Start and stop need a server on this machine; warming works on any host.
    The manager's own errors (not ours to stop, port in use...) propagate as
    ``OllamaNbError`` with their one-line explanation.
    """
    if local_only:
        available, reason = manager_availability(runtime)
        if not available:
            raise FeatureUnavailable(reason)
    operation = getattr(_manager(runtime), name, None)
    if not callable(operation):
        raise FeatureUnavailable(f"The ollama_nb server manager cannot {name}.")
    return str(operation(*args))


def has_manager() -> bool:
    return _manager_module() is not None


def active_profile(runtime: Runtime) -> str | None:
    """The tuning profile the server manager started Ollama with, when it knows one."""
    module = _import("ollama_nb.server")
    lookup = getattr(module, "active_profile_name", None) if module else None
    if not callable(lookup):
        return None
    try:
        name = lookup(runtime)
    except Exception:  # the status bar must not fail because a profile lookup did
        return None
    return name if isinstance(name, str) and name else None


# --- metrics ------------------------------------------------------------------------


def metrics_summary(runtime: Runtime, since: str = METRICS_WINDOW) -> Json:
    """Per-model figures and the recent decode speed, from the shared metrics store.

    The store is one SQLite file written by every kernel, so this covers the
    whole Lab session, not just this server process.
    """
    module = _import("ollama_nb.telemetry")
    metrics = getattr(module, "metrics", None) if module else None
    if not callable(metrics):
        raise FeatureUnavailable("The ollama_nb metrics store is not installed.")
    frame = metrics(since=since, runtime=runtime)
    return summarise(frame, since)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def summarise(frame: Any, since: str) -> Json:
    """The summary JSON from a metrics DataFrame (columns as ``ollama_nb.metrics()`` gives)."""
    empty: Json = {"window": since, "requests": 0, "models": [], "last": None, "series": []}
    if frame is None or len(frame) == 0:
        return empty
    frame = frame.sort_values("ts")
    models = []
    for name, group in frame.groupby("model", sort=True):
        ok = group[group["status"] == "ok"]
        latency = ok["latency_s"].dropna()
        tps = ok["decode_tps"].dropna()
        models.append(
            {
                "model": str(name),
                "requests": len(group),
                "errors": int((group["status"] == "error").sum()),
                "p50_latency_s": _number(latency.median()) if len(latency) else None,
                "p95_latency_s": _number(latency.quantile(0.95)) if len(latency) else None,
                "mean_decode_tps": _number(tps.mean()) if len(tps) else None,
            }
        )
    last_row = frame.iloc[-1]
    with_tps = frame[frame["decode_tps"].notna()]
    last_tps = with_tps.iloc[-1] if len(with_tps) else None
    series = [
        {"ts": _number(row.ts), "model": str(row.model), "decode_tps": _number(row.decode_tps)}
        for row in with_tps.tail(SERIES_POINTS).itertuples()
    ]
    return {
        "window": since,
        "requests": len(frame),
        "models": models,
        "last": {
            "model": str(last_row["model"]),
            "ts": _number(last_row["ts"]),
            "status": str(last_row["status"]),
            "decode_tps": _number(last_tps["decode_tps"]) if last_tps is not None else None,
            "decode_model": str(last_tps["model"]) if last_tps is not None else None,
        },
        "series": series,
    }
