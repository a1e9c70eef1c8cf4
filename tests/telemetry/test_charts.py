"""Charts carry the series the fixture implies, with labelled axes; the report embeds them."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest

import ollama_nb
from ollama_nb.domain import ConfigurationError
from ollama_nb.runtime import Runtime
from ollama_nb.settings import load_settings
from ollama_nb.telemetry import charts
from ollama_nb.telemetry.performance import build_report
from ollama_nb.telemetry.reports import model_summary

from .conftest import make_event

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_decode_speed_has_one_series_per_generating_model(frame: pd.DataFrame) -> None:
    figure = charts.decode_speed_over_time(frame)
    (axes,) = figure.axes
    assert axes.get_ylabel() == "decode speed (tokens/s)"
    assert axes.get_xlabel() == "time (local)"
    (line,) = axes.get_lines()  # the embedder and the pull generate no tokens
    assert line.get_label() == "llama3.2:latest"
    assert list(line.get_ydata()) == pytest.approx([50, 30, 40, 20])


def test_latency_and_ttft_boxes_per_model(frame: pd.DataFrame) -> None:
    latency = charts.latency_distribution(frame).axes[0]
    assert latency.get_ylabel() == "latency (s)"
    assert [t.get_text() for t in latency.get_xticklabels()] == [
        "llama3.2:latest",
        "nomic-embed-text:latest",
    ]
    ttft = charts.ttft_distribution(frame).axes[0]
    assert ttft.get_ylabel() == "time to first token (s)"
    # Only llama3.2 reported a first token; its box's median line sits at 0.5 s.
    assert [t.get_text() for t in ttft.get_xticklabels()] == ["llama3.2:latest"]
    medians = [line for line in ttft.get_lines() if list(line.get_ydata()) == [0.5, 0.5]]
    assert len(medians) == 1


def test_cold_vs_warm_bars_are_mean_latencies(frame: pd.DataFrame) -> None:
    axes = charts.cold_vs_warm(frame).axes[0]
    assert axes.get_ylabel() == "mean latency (s)"
    cold, warm = axes.containers
    assert [bar.get_height() for bar in cold] == pytest.approx([2.5, 0.0])  # (1 + 4) / 2; none
    assert [bar.get_height() for bar in warm] == pytest.approx([2.5, 0.5])  # (2 + 3) / 2; embed
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["cold", "warm"]


def test_prompt_processing_scatter_points(frame: pd.DataFrame) -> None:
    axes = charts.prompt_processing(frame).axes[0]
    assert axes.get_xlabel() == "prompt length (tokens)"
    assert axes.get_ylabel() == "prompt processing time (s)"
    llama, embed = axes.collections
    assert llama.get_label() == "llama3.2:latest"
    points = sorted(map(tuple, llama.get_offsets().tolist()))
    flat = [value for point in points for value in point]
    assert flat == pytest.approx([10, 0.1, 20, 0.1, 30, 0.2, 40, 0.4])
    assert embed.get_offsets().tolist() == [[8.0, 0.0]]


def test_usage_chart_stacks_projects(frame: pd.DataFrame) -> None:
    axes = charts.usage(frame).axes[0]
    assert axes.get_ylabel() == "requests"
    assert axes.get_title() == "Requests per day by project"
    labels = [t.get_text() for t in axes.get_legend().get_texts()]
    assert labels == ["alpha", "beta", "tests"]
    heights = {
        label: [bar.get_height() for bar in container]
        for label, container in zip(labels, axes.containers, strict=True)
    }
    assert heights == {"alpha": [2, 1], "beta": [0, 3], "tests": [0, 1]}


def test_empty_frame_gives_figures_that_say_so(frame: pd.DataFrame) -> None:
    empty = frame.iloc[0:0]
    for _title, draw in charts.PERFORMANCE_CHARTS:
        axes = draw(empty).axes[0]
        assert any(t.get_text().startswith("No ") for t in axes.texts)
        assert axes.get_ylabel()  # still labelled


def test_report_embeds_every_chart_as_png_and_exports(frame: pd.DataFrame, tmp_path: Path) -> None:
    report = build_report(frame, filters="since 1d")
    html = report._repr_html_()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(charts.PERFORMANCE_CHARTS) == len(report.figures)
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for data in images)
    assert "llama3.2:latest" in html and "Per project and notebook" in html
    assert "since 1d" in html
    assert repr(report) == "<PerformanceReport: 7 requests, 3 models, 5 charts>"
    pd.testing.assert_frame_equal(report.summary, model_summary(frame))

    written = report.to_html(tmp_path / "out" / "perf")
    assert written == tmp_path / "out" / "perf.html"
    page = written.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 5


def test_report_shows_the_active_server_profile_when_there_is_one(frame: pd.DataFrame) -> None:
    nothing = frame.iloc[0:0]  # no charts to render: this test is about the header
    assert "Active server profile" not in build_report(nothing)._repr_html_()
    html = build_report(nothing, server_profile="apple-m2-16gb")._repr_html_()
    assert "Active server profile:</b> apple-m2-16gb" in html


def test_a_failing_profile_lookup_costs_no_metrics_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime asks its server manager per row; trouble there means "no profile", not a lost row."""
    monkeypatch.setenv("OLLAMA_NB_SERVER_HEALTH_TIMEOUT_S", "soon")  # the manager cannot be built
    runtime = Runtime(load_settings(data_dir=tmp_path, request_log=False))
    try:
        with pytest.raises(ConfigurationError, match="OLLAMA_NB_SERVER_HEALTH_TIMEOUT_S"):
            runtime.server  # noqa: B018
        assert runtime.server_profile() is None
        store = runtime.telemetry
        store.record(make_event(1))
        assert store.flush()
        frame = ollama_nb.metrics(runtime=runtime)
        assert frame["request_id"].tolist() == ["req000001"]
        assert frame["server_profile"].isna().all()
    finally:
        runtime.close()


def test_report_compares_profiles_once_runs_differ(frame: pd.DataFrame) -> None:
    tuned = frame.assign(server_profile=["a", "a", "b", "b", "b", "b", "b"])
    report = build_report(tuned)
    assert report.profiles is not None and "Per server profile" in report._repr_html_()
    assert build_report(frame).profiles is None


def test_report_of_nothing_says_so(frame: pd.DataFrame) -> None:
    html = build_report(frame.iloc[0:0])._repr_html_()
    assert "No requests recorded" in html and "<img" not in html


def test_charts_display_as_png_in_ipython_without_pyplot(frame: pd.DataFrame) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    figure = charts.prompt_processing(frame)
    data, _metadata = InteractiveShell.instance().display_formatter.format(figure)
    assert data["image/png"].startswith(PNG_MAGIC)
    assert data["text/plain"] == "<Chart size 700x360 with 1 Axes>"
