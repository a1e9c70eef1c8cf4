"""A server is configured like ``ollama serve``: from OLLAMA_* variables, refusing broken ones."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from ollama_nb.domain import ConfigurationError
from ollama_nb.embedded.__main__ import main as embedded_main
from ollama_nb.serving import SERVING_VERSION, ServerConfig
from ollama_nb.testing.standin.__main__ import main as standin_main


def test_defaults_are_ollamas() -> None:
    config = ServerConfig.from_environ({})
    assert (config.host, config.port, config.num_parallel) == ("127.0.0.1", 11434, 1)
    assert (config.max_queue, config.keep_alive_s) == (512, 300.0)
    assert config.models == () and config.version == SERVING_VERSION


def test_every_variable_is_read() -> None:
    config = ServerConfig.from_environ(
        {"OLLAMA_HOST": ":8080", "OLLAMA_NUM_PARALLEL": "2", "OLLAMA_MAX_QUEUE": "9",
         "OLLAMA_KEEP_ALIVE": "-1"}
    )  # fmt: skip
    assert (config.host, config.port) == ("0.0.0.0", 8080)  # an empty host: every interface
    assert (config.num_parallel, config.max_queue, config.keep_alive_s) == (2, 9, math.inf)


def test_a_broken_host_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="OLLAMA_HOST='ftp://x'"):
        ServerConfig.from_environ({"OLLAMA_HOST": "ftp://x"})


@pytest.mark.parametrize("main", [embedded_main, standin_main], ids=["embedded", "standin"])
def test_serve_with_a_broken_host_says_so_in_one_line(
    main: Callable[[list[str]], int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:99999")
    assert main(["serve"]) == 1
    said = capsys.readouterr().err + caplog.text  # the stand-in reports through logging
    errors = [line for line in said.splitlines() if "OLLAMA_HOST='127.0.0.1:99999'" in line]
    assert len(errors) == 1 and "has an invalid port" in errors[0]
    assert "Traceback" not in said
