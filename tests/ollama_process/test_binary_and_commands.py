"""Finding ``ollama``, and the ``%ollama`` server subcommands in a real IPython shell."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from ollama_nb.domain import ConfigurationError
from ollama_nb.notebook import server_commands
from ollama_nb.notebook.commands import lookup
from ollama_nb.ollama_process import OllamaNotInstalledError, find_ollama

from .conftest import Setup, write_executable


def test_configured_binary_must_exist_and_be_executable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        find_ollama(tmp_path / "missing")
    plain = tmp_path / "ollama"
    plain.write_text("not a program")
    with pytest.raises(ConfigurationError, match="not an executable file"):
        find_ollama(plain)
    write_executable(plain, "exit 0")
    assert find_ollama(plain) == plain


def test_search_order_path_then_usual_locations(tmp_path: Path) -> None:
    bundled = write_executable(tmp_path / "Ollama.app-ollama", "exit 0")
    assert find_ollama(which=lambda _: "/on/path/ollama", locations=[bundled]) == Path(
        "/on/path/ollama"
    )
    assert find_ollama(which=lambda _: None, locations=[tmp_path / "nope", bundled]) == bundled
    with pytest.raises(OllamaNotInstalledError, match="brew install ollama"):
        find_ollama(which=lambda _: None, locations=[], platform="darwin")
    with pytest.raises(OllamaNotInstalledError, match=r"install\.sh"):
        find_ollama(which=lambda _: None, locations=[], platform="linux")


@pytest.fixture
def shell() -> InteractiveShell:
    """The subcommands get the runtime (whose manager sees a simulated 16 GB Mac) passed in."""
    return InteractiveShell.instance()


def test_tune_set_and_profile_through_the_subcommand(shell: InteractiveShell, setup: Setup) -> None:
    report = lookup("tune").handler(
        "--set OLLAMA_NUM_PARALLEL=3 --profile apple-8gb", shell, setup.runtime
    )  # type: ignore[union-attr]
    text = str(report)
    assert "Profile:  apple-8gb (profile 'apple-8gb' chosen by you)" in text
    assert "OLLAMA_NUM_PARALLEL       3      override" in text
    assert "Memory budget" in text

    with pytest.raises(ConfigurationError, match="whole number"):
        lookup("tune").handler("--set OLLAMA_NUM_PARALLEL=four", shell, setup.runtime)  # type: ignore[union-attr]
    with pytest.raises(UsageError, match="NAME=VALUE"):
        lookup("tune").handler("--set OLLAMA_NUM_PARALLEL", shell, setup.runtime)  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError, match="No tuning profile named 'huge'"):
        lookup("tune").handler("--profile huge", shell, setup.runtime)  # type: ignore[union-attr]
    assert "override" not in str(
        lookup("tune").handler("--unset OLLAMA_NUM_PARALLEL --profile auto", shell, setup.runtime)
    )  # type: ignore[union-attr]


def test_override_that_does_not_fit_is_refused_unless_forced(
    shell: InteractiveShell, setup: Setup
) -> None:
    manager = setup.runtime.server
    manager.configure(env={"OLLAMA_CONTEXT_LENGTH": "131072", "OLLAMA_NUM_PARALLEL": "8"})
    assert "Warning: The recommended models need" in str(manager.tune_report())
    with pytest.raises(ConfigurationError, match="would not fit in memory"):
        lookup("start").handler("", shell, setup.runtime)  # type: ignore[union-attr]


def test_start_server_stop_through_the_subcommands(shell: InteractiveShell, setup: Setup) -> None:
    started = lookup("start").handler("", shell, setup.runtime)  # type: ignore[union-attr]
    assert "Started ollama serve" in str(started)
    assert "started by this kernel" in str(lookup("server").handler("", shell, setup.runtime))  # type: ignore[union-attr]
    section = server_commands._status_section(setup.runtime)
    assert section is not None and "profile apple-16gb" in str(section[1])
    assert "Stopped" in str(lookup("stop").handler("", shell, setup.runtime))  # type: ignore[union-attr]
    with pytest.raises(UsageError):
        lookup("stop").handler("--bogus", shell, setup.runtime)  # type: ignore[union-attr]
