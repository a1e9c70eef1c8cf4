"""Settings: OLLAMA_HOST in every form Ollama accepts, and clear errors for the rest."""

from __future__ import annotations

import pytest

from ollama_nb.domain import ConfigurationError
from ollama_nb.infrastructure.host import parse_ollama_host
from ollama_nb.settings import load_settings, update_settings


@pytest.mark.parametrize(
    ("value", "base_url"),
    [
        (None, "http://127.0.0.1:11434"),
        ("", "http://127.0.0.1:11434"),
        ("example.com", "http://example.com:11434"),
        ("example.com:8080", "http://example.com:8080"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("http://example.com:11434", "http://example.com:11434"),
        ("https://example.com:9999/ollama", "https://example.com:9999/ollama"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        (":9000", "http://127.0.0.1:9000"),
        ("[::1]:9000", "http://[::1]:9000"),
        ("::1", "http://[::1]:11434"),
        ('"localhost:1234"', "http://localhost:1234"),
        ("  127.0.0.1:5  ", "http://127.0.0.1:5"),
    ],
)
def test_ollama_host_forms(value: str | None, base_url: str) -> None:
    assert parse_ollama_host(value).base_url == base_url


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("ftp://host", "scheme"),
        ("host:port", "invalid port"),
        ("host:99999", "invalid port"),
        ("my host:1", "not a host"),
        ("a:b:c", "more than one"),
        ("[::1", "Unclosed"),
    ],
)
def test_malformed_hosts_fail_clearly(value: str, pattern: str) -> None:
    with pytest.raises(ConfigurationError, match=pattern):
        parse_ollama_host(value)


def test_locality() -> None:
    assert parse_ollama_host("localhost").is_local
    assert parse_ollama_host("127.0.0.5:1").is_local
    assert parse_ollama_host("[::1]:1").is_local
    assert not parse_ollama_host("example.com").is_local


def test_env_precedence_and_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:1111")
    assert load_settings().host == "http://127.0.0.1:1111"
    monkeypatch.setenv("OLLAMA_NB_HOST", "127.0.0.1:2222")
    assert load_settings().host == "http://127.0.0.1:2222"
    monkeypatch.setenv("OLLAMA_NB_HOST", "127.0.0.1:notaport")
    with pytest.raises(ConfigurationError, match="OLLAMA_NB_HOST"):
        load_settings()
    monkeypatch.delenv("OLLAMA_NB_HOST")
    monkeypatch.setenv("OLLAMA_NB_READ_TIMEOUT_S", "soon")
    with pytest.raises(ConfigurationError, match="OLLAMA_NB_READ_TIMEOUT_S"):
        load_settings()


def test_update_settings_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    settings = load_settings()
    assert update_settings(settings, default_model="qwen3:0.6b").default_model == "qwen3:0.6b"
    with pytest.raises(ConfigurationError, match="default_model"):
        update_settings(settings, default_model="bad name")
    with pytest.raises(ConfigurationError, match="Unknown setting 'colour'"):
        update_settings(settings, colour="blue")
    with pytest.raises(ConfigurationError, match="temprature"):
        update_settings(settings, default_options={"temprature": 1})


def test_parallel_follows_ollama_num_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "4")
    assert load_settings().effective_parallel == 4
    assert load_settings(parallel=2).effective_parallel == 2
    monkeypatch.delenv("OLLAMA_NUM_PARALLEL")
    assert load_settings().effective_parallel == 1
