"""``%ollama metrics`` and ``%ollama perf`` in a real IPython shell against the stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import ollama_nb
from ollama_nb.domain import OllamaNbError
from ollama_nb.runtime import Runtime
from ollama_nb.telemetry.performance import PerformanceReport


@pytest.fixture
def shell(runtime: Runtime) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "ollama_nb")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "ollama_nb")


def test_metrics_table_per_model(shell: InteractiveShell) -> None:
    ollama_nb.chat("one", model="llama3.2")
    ollama_nb.chat("two", model="llama3.2")
    ollama_nb.chat("three", model="qwen3:0.6b")
    table = shell.run_line_magic("ollama", "metrics --since 1h")
    assert isinstance(table, pd.DataFrame)
    assert table["requests"].to_dict() == {"llama3.2:latest": 2, "qwen3:0.6b": 1}
    only = shell.run_line_magic("ollama", "metrics --model llama3.2 --project telemetry-tests")
    assert only.index.tolist() == ["llama3.2:latest"]


def test_metrics_with_nothing_recorded_says_so(shell: InteractiveShell) -> None:
    notice = shell.run_line_magic("ollama", "metrics --model phi4-mini")
    assert repr(notice) == "No requests recorded matching --model phi4-mini yet."


def test_perf_returns_a_report_with_charts(shell: InteractiveShell) -> None:
    ollama_nb.chat("hello", model="llama3.2")
    report = shell.run_line_magic("ollama", "perf --model llama3.2")
    assert isinstance(report, PerformanceReport)
    assert report.summary.index.tolist() == ["llama3.2:latest"]
    assert len(report.figures) == 5
    assert report._repr_html_().count("data:image/png;base64,") == 5


def test_bad_since_is_one_line_not_a_traceback(shell: InteractiveShell) -> None:
    lines = []
    for line in ("metrics --since soon", "perf --model not/a/valid:model:name"):
        with pytest.raises(OllamaNbError) as failed:
            shell.run_line_magic("ollama", line)
        lines += failed.value._render_traceback_()
    assert lines == [
        "InvalidInputError: Cannot read 'soon' as a time. Use a look-back like 30m, 1h, 7d "
        "or 2w, or a date like 2024-05-01.",
        "InvalidInputError: 'not/a/valid:model:name' is not a valid model name. Use letters, "
        "digits, '.', '-', '_' as in `llama3.2:3b` or `namespace/model:tag`.",
    ]


def test_unknown_option_is_a_usage_error(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError):
        shell.run_line_magic("ollama", "metrics --colour red")
