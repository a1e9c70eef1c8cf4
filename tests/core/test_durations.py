"""The one Go duration reader, on the forms Go accepts and refuses, from both sides."""

from __future__ import annotations

import pytest

from ollama_nb.domain import InvalidInputError, KeepAlive
from ollama_nb.domain.durations import DurationError, parse_go_duration
from ollama_nb.serving.durations import keep_alive_from_request


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("+0", 0.0),
        ("-0", 0.0),
        ("1.5h", 5400.0),
        (".5m", 30.0),
        ("5.m", 300.0),
        ("1h2m3s4ms5us6ns", 3723.004005006),
        ("3\u00b5s", 3e-6),  # micro sign
        ("3\u03bcs", 3e-6),  # Greek mu
        ("-1m", -60.0),
    ],
)
def test_go_accepts(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "+", "-", "1", ".s", "1d", "1H", "1h 2m", "300000000h"])
def test_go_refuses(text: str) -> None:
    with pytest.raises(DurationError):
        parse_go_duration(text)


@pytest.mark.parametrize("text", ["3\u03bcs", ".5m", "-0"])
def test_the_client_and_the_server_read_a_duration_alike(text: str) -> None:
    seconds = KeepAlive(text).seconds
    assert seconds == pytest.approx(parse_go_duration(text))
    assert keep_alive_from_request(text) == pytest.approx(seconds)


def test_the_client_refuses_what_the_server_would() -> None:
    with pytest.raises(InvalidInputError, match="keep_alive"):
        KeepAlive("300000000h")  # longer than Go's int64 nanoseconds
    with pytest.raises(DurationError):
        keep_alive_from_request("300000000h")


# --- the one whole-number check ---------------------------------------------------------


def test_whole_number_refuses_bools_floats_and_small_values() -> None:
    from ollama_nb.domain.checks import whole_number

    assert whole_number("retries", 0, 0) == 0
    assert whole_number("sample", None, 1, optional=True) is None
    for bad in (True, 2.0, "3", 0, -1):
        with pytest.raises(InvalidInputError, match=r"concurrency must be a whole number >= 1"):
            whole_number("concurrency", bad, 1)
    with pytest.raises(InvalidInputError, match=r">= 0, got None"):
        whole_number("max_errors", None, 0)
