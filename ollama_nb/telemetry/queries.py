"""Reading events out of the store as a pandas DataFrame, one row per request."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

from ..domain import InvalidInputError, ModelName
from .schema import EVENT_COLUMNS
from .store import TelemetryStore

Since = str | dt.datetime | dt.timedelta | pd.Timestamp | None

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}

#: Columns of ``metrics()``, in order: ``time`` first, then what the store keeps.
FRAME_COLUMNS = ("time", *EVENT_COLUMNS)


def since_epoch(since: Since, now: float) -> float | None:
    """``since`` as epoch seconds: a look-back ("30m", "1h", "7d", a timedelta) or a moment."""
    if since is None:
        return None
    if isinstance(since, dt.timedelta):
        return now - since.total_seconds()
    if isinstance(since, pd.Timestamp | dt.datetime):
        stamp = pd.Timestamp(since)
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize(_local_tz())
        return float(stamp.timestamp())
    if isinstance(since, str):
        match = _DURATION.match(since)
        if match:
            return now - float(match.group(1)) * _UNIT_S[match.group(2).lower()]
        try:
            return since_epoch(pd.Timestamp(since), now)
        except ValueError:
            pass
    raise InvalidInputError(
        f"Cannot read {since!r} as a time.",
        hint="Use a look-back like 30m, 1h, 7d or 2w, or a date like 2024-05-01.",
    )


def _local_tz() -> dt.tzinfo:
    tz = dt.datetime.now().astimezone().tzinfo
    return tz if tz is not None else dt.UTC


def load_events(
    store: TelemetryStore,
    *,
    since: Since = None,
    model: str | None = None,
    project: str | None = None,
    history: bool = False,
    now: float,
) -> pd.DataFrame:
    """Events matching the filters, oldest first; ``history=True`` adds prompt and response.

    ``model`` matches as Ollama does (``x`` is ``x:latest``); ``project`` matches
    the project label or the notebook path.
    """
    store.flush()
    where: list[str] = []
    params: list[object] = []
    start = since_epoch(since, now)
    if start is not None:
        where.append("e.ts >= ?")
        params.append(start)
    if model:
        where.append("e.model = ?")
        params.append(ModelName(model).canonical)
    if project:
        where.append("(e.project = ? OR e.notebook = ?)")
        params.extend([project, project])
    columns = ", ".join(f"e.{c}" for c in EVENT_COLUMNS)
    sql = f"SELECT {columns}"
    if history:
        sql += ", h.prompt, h.response FROM events e LEFT JOIN history h ON h.event_id = e.id"
    else:
        sql += " FROM events e"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY e.ts, e.id"
    with store.connect() as db:
        rows = db.execute(sql, params).fetchall()
    names = [*EVENT_COLUMNS, *(("prompt", "response") if history else ())]
    frame = pd.DataFrame.from_records(rows, columns=names)
    return _typed(frame)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the columns useful dtypes (times, booleans, floats with NaN for missing)."""
    frame = frame.copy()
    frame.insert(0, "time", pd.to_datetime(frame["ts"].astype("float64"), unit="s", utc=True))
    frame["time"] = frame["time"].dt.tz_convert(_local_tz())
    frame["cold_load"] = frame["cold_load"].astype(bool)
    for column in (
        "latency_s",
        "ttft_s",
        "total_s",
        "load_s",
        "prompt_eval_s",
        "eval_s",
        "decode_tps",
        "prompt_tps",
        "queue_wait_s",
    ):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in (
        "prompt_tokens",
        "eval_tokens",
        "image_count",
        "image_bytes_saved",
        "retries",
        "tool_calls",
    ):
        frame[column] = frame[column].fillna(0).astype("int64")
    return frame
