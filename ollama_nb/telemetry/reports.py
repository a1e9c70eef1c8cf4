"""Summaries of the event frame: per model, per project, and usage over time.

All take the frame ``metrics()`` returns and give a new DataFrame; none reads the
store, so they work as well on a frame a user filtered or loaded from a file.
Percentiles are pandas' default (linear interpolation between the closest ranks).
"""

from __future__ import annotations

import pandas as pd

from ..domain import InvalidInputError

#: Requests that ran a model; a pull's duration is a download, not an inference.
INFERENCE_KINDS = ("chat", "generate", "vision", "embed")

SUMMARY_COLUMNS = (
    "requests",
    "errors",
    "cached",
    "latency_p50_s",
    "latency_p95_s",
    "ttft_p50_s",
    "ttft_p95_s",
    "decode_tps_mean",
    "prompt_tps_mean",
    "cold_loads",
    "load_mean_s",
    "tokens_in",
    "tokens_out",
)


def _quantile(values: pd.Series, q: float) -> float:
    clean = values.dropna()
    return float(clean.quantile(q)) if len(clean) else float("nan")


def _mean(values: pd.Series) -> float:
    clean = values.dropna()
    return float(clean.mean()) if len(clean) else float("nan")


def _model_row(group: pd.DataFrame) -> dict[str, float | int]:
    ok = group[(group["status"] == "ok") & group["kind"].isin(INFERENCE_KINDS)]
    cold = ok[ok["cold_load"]]
    served = group["status"] == "cached"
    computed = group[~served]  # a kept answer's tokens were generated on an earlier run
    return {
        "requests": len(group),
        "errors": int((group["status"] == "error").sum()),
        "cached": int(served.sum()),
        "latency_p50_s": _quantile(ok["latency_s"], 0.50),
        "latency_p95_s": _quantile(ok["latency_s"], 0.95),
        "ttft_p50_s": _quantile(ok["ttft_s"], 0.50),
        "ttft_p95_s": _quantile(ok["ttft_s"], 0.95),
        "decode_tps_mean": _mean(ok["decode_tps"]),
        "prompt_tps_mean": _mean(ok["prompt_tps"]),
        "cold_loads": len(cold),
        "load_mean_s": _mean(cold["load_s"]),
        "tokens_in": int(computed["prompt_tokens"].sum()),
        "tokens_out": int(computed["eval_tokens"].sum()),
    }


def model_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per model: counts, latency and TTFT percentiles, speeds, cold loads, tokens.

    ``requests`` and ``errors`` count every request kind and ``cached`` the answers
    served from the response cache; the timing columns use successful inference
    requests only (an error, a pull or a cached answer would skew them), tokens
    count only what a model computed, and ``load_mean_s`` is the mean load time of
    the cold loads.
    """
    if frame.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS), index=pd.Index([], name="model"))
    rows = {model: _model_row(group) for model, group in frame.groupby("model", sort=True)}
    summary = pd.DataFrame.from_dict(rows, orient="index", columns=list(SUMMARY_COLUMNS))
    summary.index.name = "model"
    return summary


def host_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """``model_summary`` per server: which host of a pool answered how much, how fast."""
    if frame.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS), index=pd.Index([], name="host"))
    rows = {host: _model_row(group) for host, group in frame.groupby("host", sort=True)}
    summary = pd.DataFrame.from_dict(rows, orient="index", columns=list(SUMMARY_COLUMNS))
    summary.index.name = "host"
    return summary


def profile_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """``model_summary`` split by the server profile active when each request ran.

    Lets a user compare the same model under two tunings; rows recorded without
    a server manager are grouped as "(none)".
    """
    labelled = frame.assign(server_profile=frame["server_profile"].fillna("(none)"))
    parts = {
        profile: model_summary(group)
        for profile, group in labelled.groupby("server_profile", sort=True)
    }
    if not parts:
        return model_summary(frame)
    return pd.concat(parts, names=["server_profile", "model"])


def project_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Usage per project, notebook and model: requests, errors, tokens, busy time, first/last use."""
    columns = ["requests", "errors", "tokens_in", "tokens_out", "busy_s", "first", "last"]
    keys = ["project", "notebook", "model"]
    if frame.empty:
        return pd.DataFrame(columns=columns, index=pd.MultiIndex.from_tuples([], names=keys))
    labelled = frame.assign(
        notebook=frame["notebook"].fillna("(unknown)"), is_error=frame["status"] == "error"
    )
    grouped = labelled.groupby(keys, sort=True)
    return pd.DataFrame(
        {
            "requests": grouped.size(),
            "errors": grouped["is_error"].sum().astype("int64"),
            "tokens_in": grouped["prompt_tokens"].sum(),
            "tokens_out": grouped["eval_tokens"].sum(),
            "busy_s": grouped["latency_s"].sum(min_count=0),
            "first": grouped["time"].min(),
            "last": grouped["time"].max(),
        }
    )


def usage_over_time(frame: pd.DataFrame, *, by: str = "project", freq: str = "D") -> pd.DataFrame:
    """Requests per period (rows) and per ``by`` value (columns: project, notebook or model)."""
    if by not in ("project", "notebook", "model"):
        raise InvalidInputError(
            f"Cannot group usage by {by!r}.", hint="Use project, notebook or model."
        )
    if frame.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="period"))
    labelled = frame.assign(**{by: frame[by].fillna("(unknown)")})
    counts = (
        labelled.groupby([pd.Grouper(key="time", freq=freq), by])
        .size()
        .unstack(by, fill_value=0)
        .sort_index()
    )
    counts.index.name = "period"
    counts.columns.name = by
    return counts.astype("int64")
