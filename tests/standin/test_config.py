"""Environment parsing: OLLAMA_HOST, keep-alive durations and the other knobs."""

from __future__ import annotations

import math

import pytest

from ollama_nb.domain import ConfigurationError
from ollama_nb.infrastructure.host import (
    format_host,
    host_header_allowed,
    is_loopback,
    parse_ollama_host,
)
from ollama_nb.serving.durations import (
    DurationError,
    keep_alive_from_env,
    keep_alive_from_request,
    parse_go_duration,
)
from ollama_nb.testing import StandinConfig


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ("http", "127.0.0.1", 11434)),
        ("", ("http", "127.0.0.1", 11434)),
        ("1.2.3.4", ("http", "1.2.3.4", 11434)),
        ("1.2.3.4:56789", ("http", "1.2.3.4", 56789)),
        (":56789", ("http", "0.0.0.0", 56789)),
        ("http://1.2.3.4", ("http", "1.2.3.4", 80)),
        ("https://1.2.3.4", ("https", "1.2.3.4", 443)),
        ("https://1.2.3.4:56789", ("https", "1.2.3.4", 56789)),
        ("example.com", ("http", "example.com", 11434)),
        ("example.com:56789/", ("http", "example.com", 56789)),
        ("[::1]", ("http", "::1", 11434)),
        ("[::1]:56789", ("http", "::1", 56789)),
        ("http://[0001:002:003:0004::1]:56789", ("http", "0001:002:003:0004::1", 56789)),
        ('  "127.0.0.1:9999"  ', ("http", "127.0.0.1", 9999)),
        ("'0.0.0.0:1234'", ("http", "0.0.0.0", 1234)),
    ],
)
def test_ollama_host_is_parsed_like_envconfig(
    value: str | None, expected: tuple[str, str, int]
) -> None:
    where = parse_ollama_host(value)
    assert (where.scheme, where.hostname, where.port) == expected


def test_the_server_refuses_a_broken_ollama_host_instead_of_guessing() -> None:
    with pytest.raises(ConfigurationError, match="invalid port"):
        StandinConfig.from_environ({"OLLAMA_HOST": "127.0.0.1:99999"})


def test_hostport_prints_brackets_for_ipv6() -> None:
    assert format_host("::1") == "[::1]" and parse_ollama_host("[::1]:5").netloc == "[::1]:5"


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("127.0.0.1:11434", True),
        ("localhost", True),
        ("LOCALHOST:1", True),
        ("[::1]:11434", True),
        ("192.168.1.10:11434", True),
        ("0.0.0.0", True),
        ("box.local", True),
        ("app.localhost:3000", True),
        ("svc.internal", True),
        ("", True),
        ("evil.example.com", False),
        ("8.8.8.8:11434", False),
    ],
)
def test_host_header_rule(header: str, allowed: bool) -> None:
    assert host_header_allowed(header) is allowed


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300.0), ("1h30m", 5400.0), ("300ms", 0.3), ("1.5s", 1.5), ("0", 0.0), ("-1s", -1.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "5x", "m", "1h-"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(DurationError):
        parse_go_duration(text)


def test_keep_alive_env_forms() -> None:
    assert keep_alive_from_env("300", 1.0) == 300.0
    assert keep_alive_from_env("10m", 1.0) == 600.0
    assert keep_alive_from_env("-1", 1.0) == math.inf
    assert keep_alive_from_env("-5m", 1.0) == math.inf
    assert keep_alive_from_env("0", 1.0) == 0.0
    assert keep_alive_from_env("nonsense", 7.0) == 7.0
    assert keep_alive_from_env('"1h"', 7.0) == 3600.0


def test_keep_alive_request_forms() -> None:
    assert keep_alive_from_request(30) == 30.0
    assert keep_alive_from_request("1m") == 60.0
    assert keep_alive_from_request(-1) == math.inf
    with pytest.raises(DurationError):
        keep_alive_from_request("300")
    with pytest.raises(DurationError):
        keep_alive_from_request(True)


def test_config_from_environ_defaults() -> None:
    config = StandinConfig.from_environ({})
    assert (config.host, config.port) == ("127.0.0.1", 11434)
    assert (config.num_parallel, config.max_queue, config.keep_alive_s) == (1, 512, 300.0)
    assert (config.tokens_per_second, config.load_seconds) == (0.0, 0.0)


def test_config_from_environ_reads_everything() -> None:
    config = StandinConfig.from_environ(
        {
            "OLLAMA_HOST": "http://0.0.0.0:8080",
            "OLLAMA_NUM_PARALLEL": "4",
            "OLLAMA_MAX_QUEUE": "2",
            "OLLAMA_KEEP_ALIVE": "-1",
            "OLLAMA_NB_STANDIN_TOKENS_PER_SECOND": "25.5",
            "OLLAMA_NB_STANDIN_LOAD_SECONDS": "1.5",
        }
    )
    assert (config.host, config.port) == ("0.0.0.0", 8080)
    assert (config.num_parallel, config.max_queue) == (4, 2)
    assert config.keep_alive_s == math.inf
    assert (config.tokens_per_second, config.load_seconds) == (25.5, 1.5)


def test_config_ignores_invalid_numbers_like_ollama() -> None:
    config = StandinConfig.from_environ({"OLLAMA_NUM_PARALLEL": "lots", "OLLAMA_MAX_QUEUE": "0"})
    assert (config.num_parallel, config.max_queue) == (1, 512)


def test_config_rejects_impossible_values() -> None:
    with pytest.raises(ValueError, match="num_parallel"):
        StandinConfig(num_parallel=0)
    with pytest.raises(ValueError, match="max_queue"):
        StandinConfig(max_queue=0)
