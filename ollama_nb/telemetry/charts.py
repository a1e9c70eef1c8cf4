"""Matplotlib figures, one per question a user asks of their metrics.

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot, so
making one never touches pyplot's global state or pops up a window, and nothing
is shown twice in a notebook; they render in JupyterLab, VS Code, nbconvert
and static viewers as PNG. Each takes the frame ``metrics()`` returns. An empty
frame gives a figure that says there is no data, so a report always has the
same shape.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .reports import INFERENCE_KINDS, usage_over_time

_SIZE = (7.0, 3.6)


class Chart(Figure):
    """A Figure that shows itself as PNG wherever IPython renders, with or without pyplot.

    A plain Figure made without pyplot only displays as an image once the inline
    backend has registered its formatter; this one needs nothing set up.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def _figure(title: str) -> tuple[Figure, Axes]:
    figure = Chart(figsize=_SIZE, dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _no_data(axes: Axes, what: str) -> None:
    axes.text(
        0.5, 0.5, f"No {what} yet", ha="center", va="center", transform=axes.transAxes, alpha=0.6
    )


def _successful(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["status"] == "ok") & frame["kind"].isin(INFERENCE_KINDS)]


def _wall_time(times: pd.Series) -> pd.Series:
    """Local wall-clock times without a zone, which matplotlib's date axis shows as is."""
    return times.dt.tz_localize(None) if times.dt.tz is not None else times


def _date_axis(axes: Axes) -> None:
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    )


def decode_speed_over_time(frame: pd.DataFrame) -> Figure:
    """Is a model getting faster or slower? Decode tokens/s per request, one series per model."""
    figure, axes = _figure("Decode speed over time")
    axes.set_xlabel("time (local)")
    axes.set_ylabel("decode speed (tokens/s)")
    data = _successful(frame).dropna(subset=["decode_tps"])
    if data.empty:
        _no_data(axes, "generated tokens")
        return figure
    for model, group in data.groupby("model", sort=True):
        axes.plot(_wall_time(group["time"]), group["decode_tps"], marker="o", label=str(model))
    _date_axis(axes)
    axes.set_ylim(bottom=0)
    axes.legend(loc="best", fontsize="small")
    return figure


def _distribution(frame: pd.DataFrame, column: str, title: str, label: str) -> Figure:
    figure, axes = _figure(title)
    axes.set_xlabel("model")
    axes.set_ylabel(label)
    data = _successful(frame).dropna(subset=[column])
    if data.empty:
        _no_data(axes, "timed requests")
        return figure
    groups = [(str(model), group[column].to_numpy()) for model, group in data.groupby("model")]
    axes.boxplot([values for _, values in groups], tick_labels=[name for name, _ in groups])
    axes.set_ylim(bottom=0)
    return figure


def latency_distribution(frame: pd.DataFrame) -> Figure:
    """How long does a whole answer take, and how much does that vary?"""
    return _distribution(frame, "latency_s", "Request latency by model", "latency (s)")


def ttft_distribution(frame: pd.DataFrame) -> Figure:
    """How long until the first token appears?"""
    return _distribution(frame, "ttft_s", "Time to first token by model", "time to first token (s)")


def cold_vs_warm(frame: pd.DataFrame) -> Figure:
    """What does loading a model cost? Mean latency of cold-load and warm requests per model."""
    figure, axes = _figure("Cold load vs warm: mean latency")
    axes.set_xlabel("model")
    axes.set_ylabel("mean latency (s)")
    data = _successful(frame).dropna(subset=["latency_s"])
    if data.empty:
        _no_data(axes, "timed requests")
        return figure
    means = (
        data.assign(load=data["cold_load"].map({True: "cold", False: "warm"}))
        .pivot_table(index="model", columns="load", values="latency_s", aggfunc="mean")
        .reindex(columns=["cold", "warm"])
    )
    positions = list(range(len(means.index)))
    width = 0.38
    for offset, state in ((-width / 2, "cold"), (width / 2, "warm")):
        axes.bar(
            [p + offset for p in positions],
            means[state].fillna(0.0).to_numpy(),
            width=width,
            label=state,
        )
    axes.set_xticks(positions, [str(m) for m in means.index])
    axes.legend(loc="best", fontsize="small")
    return figure


def prompt_processing(frame: pd.DataFrame) -> Figure:
    """How does prompt length drive prompt-processing time?"""
    figure, axes = _figure("Prompt length vs prompt processing time")
    axes.set_xlabel("prompt length (tokens)")
    axes.set_ylabel("prompt processing time (s)")
    data = _successful(frame)
    data = data[data["prompt_tokens"] > 0]
    if data.empty:
        _no_data(axes, "prompts")
        return figure
    for model, group in data.groupby("model", sort=True):
        axes.scatter(group["prompt_tokens"], group["prompt_eval_s"], label=str(model), s=18)
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.legend(loc="best", fontsize="small")
    return figure


def usage(frame: pd.DataFrame, *, by: str = "project", freq: str = "D") -> Figure:
    """Who used which models when? Requests per period, stacked by project (or notebook, model)."""
    figure, axes = _figure(f"Requests per {_PERIOD_NAMES.get(freq, freq)} by {by}")
    axes.set_xlabel("period starting")
    axes.set_ylabel("requests")
    counts = usage_over_time(frame, by=by, freq=freq)
    if counts.empty:
        _no_data(axes, "requests")
        return figure
    labels = [stamp.strftime(_LABEL_FORMATS.get(freq, "%Y-%m-%d %H:%M")) for stamp in counts.index]
    bottom = [0] * len(counts.index)
    for name in counts.columns:
        heights = counts[name].tolist()
        axes.bar(labels, heights, bottom=bottom, label=str(name))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    axes.legend(loc="best", fontsize="small")
    return figure


_PERIOD_NAMES = {"h": "hour", "D": "day", "W": "week", "MS": "month"}
_LABEL_FORMATS = {"h": "%m-%d %H:00", "D": "%Y-%m-%d", "W": "%Y-%m-%d", "MS": "%Y-%m"}

#: The performance report's figures, in order.
PERFORMANCE_CHARTS: tuple[tuple[str, Callable[[pd.DataFrame], Figure]], ...] = (
    ("Decode speed over time", decode_speed_over_time),
    ("Latency distribution", latency_distribution),
    ("Time to first token distribution", ttft_distribution),
    ("Cold vs warm", cold_vs_warm),
    ("Prompt processing", prompt_processing),
)
