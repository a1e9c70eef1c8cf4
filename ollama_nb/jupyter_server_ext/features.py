"""The server manager and the metrics store behind the Lab panel.

Both are the runtime's own (``runtime.server``, ``runtime.telemetry``). The
manager may not apply (it can only start a server on this machine): that is an
answer the front end can show ("not available: why"), never a 500.
"""

from __future__ import annotations

import math
from typing import Any

from .. import telemetry
from ..runtime import Runtime

Json = dict[str, Any]

#: How far back the metrics summary looks.
METRICS_WINDOW = "24h"
#: Points in the decode tokens/s series the sidebar charts.
SERIES_POINTS = 60


class FeatureUnavailable(Exception):
    """A feature this request needs does not apply here; ``str()`` says why."""


# --- server manager -------------------------------------------------------------------


def manager_availability(runtime: Runtime) -> tuple[bool, str | None]:
    """Whether start/stop can be offered for the configured host, and why not."""
    host = runtime.settings.ollama_host
    if not host.is_local:
        return False, (
            f"The Ollama server at {host.base_url} is not on this machine: "
            "only a local server can be started or stopped from JupyterLab."
        )
    return True, None


def call_manager(runtime: Runtime, name: str, *args: str, local_only: bool = True) -> str:
    """Run one manager operation (start, stop, warm) and return its report as text.

    Blocking: call it from a thread. Start and stop need a server on this
    machine; warming works on any host. The manager's own errors (not ours to
    stop, port in use...) propagate as ``OllamaNbError`` with their one-line
    explanation.
    """
    if local_only:
        available, reason = manager_availability(runtime)
        if not available:
            raise FeatureUnavailable(reason)
    manager = runtime.server
    if name == "start" and not args:
        return str(manager.start())
    if name == "stop" and not args:
        return str(manager.stop())
    if name == "warm" and len(args) == 1:
        return str(manager.warm(args[0]))
    raise FeatureUnavailable(f"The ollama_nb server manager cannot {name}.")


def active_profile(runtime: Runtime) -> str | None:
    """The tuning profile the server manager started Ollama with, when it knows one."""
    return runtime.server_profile()


# --- metrics ------------------------------------------------------------------------


def metrics_summary(runtime: Runtime, since: str = METRICS_WINDOW) -> Json:
    """Per-model figures and the recent decode speed, from the shared metrics store.

    The store is one SQLite file written by every kernel, so this covers the
    whole Lab session, not just this server process.
    """
    frame = telemetry.metrics(runtime.telemetry, since=since, now=runtime.clock.time())
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
