"""Report numbers against the hand-computed fixture (``conftest.fixture_events``)."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from ollama_nb.domain import InvalidInputError
from ollama_nb.telemetry.queries import since_epoch
from ollama_nb.telemetry.reports import (
    model_summary,
    profile_summary,
    project_summary,
    usage_over_time,
)

from .conftest import DAY2


def test_model_summary_matches_hand_computed_figures(frame: pd.DataFrame) -> None:
    summary = model_summary(frame)
    assert summary.index.tolist() == [
        "llama3.2:latest",
        "moondream:latest",
        "nomic-embed-text:latest",
    ]
    llama = summary.loc["llama3.2:latest"]
    assert llama["requests"] == 5 and llama["errors"] == 1
    # Linear percentiles of [1, 2, 3, 4]: p50 = 2.5, p95 at rank 2.85 = 3 + 0.85 * 1.
    assert llama["latency_p50_s"] == pytest.approx(2.5)
    assert llama["latency_p95_s"] == pytest.approx(3.85)
    assert llama["ttft_p50_s"] == pytest.approx(0.5)
    assert llama["ttft_p95_s"] == pytest.approx(0.77)
    assert llama["decode_tps_mean"] == pytest.approx((50 + 30 + 40 + 20) / 4)
    assert llama["prompt_tps_mean"] == pytest.approx((200 + 100 + 100 + 150) / 4)
    assert llama["cold_loads"] == 2
    assert llama["load_mean_s"] == pytest.approx((3.0 + 1.0) / 2)
    assert llama["tokens_in"] == 20 + 40 + 10 + 30
    assert llama["tokens_out"] == 100 + 60 + 40 + 80

    embed = summary.loc["nomic-embed-text:latest"]
    assert embed["requests"] == 1 and embed["tokens_in"] == 8 and embed["tokens_out"] == 0
    assert embed["latency_p50_s"] == pytest.approx(0.5)
    assert math.isnan(embed["decode_tps_mean"]) and math.isnan(embed["load_mean_s"])

    pull = summary.loc["moondream:latest"]
    # A pull is counted but its download time is not an inference latency.
    assert pull["requests"] == 1 and math.isnan(pull["latency_p50_s"])


def test_empty_summary_keeps_its_columns() -> None:
    empty = model_summary(pd.DataFrame())
    assert empty.empty and "latency_p95_s" in empty.columns and empty.index.name == "model"


def test_project_summary_per_project_notebook_and_model(frame: pd.DataFrame) -> None:
    table = project_summary(frame)
    alpha = table.loc[("alpha", "(unknown)", "llama3.2:latest")]
    assert alpha["requests"] == 3 and alpha["errors"] == 0
    assert alpha["tokens_in"] == 70 and alpha["tokens_out"] == 200
    assert alpha["busy_s"] == pytest.approx(6.0)
    beta = table.loc[("beta", "(unknown)", "llama3.2:latest")]
    assert beta["requests"] == 2 and beta["errors"] == 1
    assert beta["first"].timestamp() == pytest.approx(DAY2 + 60)
    assert beta["last"].timestamp() == pytest.approx(DAY2 + 120)


def test_usage_over_time_counts_per_day_and_project(frame: pd.DataFrame) -> None:
    usage = usage_over_time(frame.assign(project=frame["project"].fillna("?")))
    assert [d.day for d in usage.index] == [1, 2]
    assert usage["alpha"].tolist() == [2, 1]
    assert usage["beta"].tolist() == [0, 3]
    assert usage["tests"].tolist() == [0, 1]  # the pull kept the fixture's default label
    by_model = usage_over_time(frame, by="model")
    assert by_model["llama3.2:latest"].tolist() == [2, 3]
    with pytest.raises(InvalidInputError, match="Cannot group usage by 'colour'"):
        usage_over_time(frame, by="colour")


def test_profile_summary_splits_runs_by_server_profile(frame: pd.DataFrame) -> None:
    tuned = frame.assign(
        server_profile=["m2-balanced", "m2-balanced", "m2-fast", "m2-fast", None, None, None]
    )
    table = profile_summary(tuned)
    assert table.loc[("m2-balanced", "llama3.2:latest"), "decode_tps_mean"] == pytest.approx(40)
    assert table.loc[("m2-fast", "llama3.2:latest"), "decode_tps_mean"] == pytest.approx(30)
    assert table.loc[("(none)", "llama3.2:latest"), "errors"] == 1


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("90s", 1000.0 - 90),
        ("30m", 1000.0 - 1800),
        ("2h", 1000.0 - 7200),
        ("1d", 1000.0 - 86_400),
        ("1w", 1000.0 - 604_800),
        (dt.timedelta(minutes=5), 1000.0 - 300),
        (None, None),
    ],
)
def test_since_reads_look_backs(given: object, expected: float | None) -> None:
    assert since_epoch(given, now=1000.0) == expected  # type: ignore[arg-type]


def test_since_reads_dates_in_local_time() -> None:
    expected = dt.datetime(2024, 5, 1).astimezone().timestamp()
    assert since_epoch("2024-05-01", now=0.0) == pytest.approx(expected)
    assert since_epoch(dt.datetime(2024, 5, 1), now=0.0) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["soon", "1x", "h1", ""])
def test_since_rejects_what_it_cannot_read(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="30m, 1h, 7d"):
        since_epoch(bad, now=0.0)
