"""Simon Willison's ``llm`` with the ``llm-ollama`` plugin, pointed by ``OLLAMA_HOST``."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import LEAKY_CLIENT, NEEDS_SERVER, SHORT, Target

# the client leaks its ollama clients' sockets: see LEAKY_CLIENT
pytestmark = [NEEDS_SERVER, pytest.mark.timeout(600), *LEAKY_CLIENT]


@pytest.fixture
def llm_home(target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """llm keeps its logs and the plugin its model cache in a folder of the test's own."""
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path))
    monkeypatch.setenv("OLLAMA_HOST", target.url)
    return tmp_path


def test_models_are_discovered_and_prompted(target: Target, llm_home: Path) -> None:
    import llm

    model = llm.get_model(f"ollama/{target.chat_model}")
    response = model.prompt(
        "The capital of France is", num_predict=SHORT["num_predict"], temperature=0
    )
    assert response.text().strip()
    assert response.response_json is not None


def test_the_cli_answers(target: Target, llm_home: Path) -> None:
    from click.testing import CliRunner
    from llm.cli import cli

    result = CliRunner().invoke(
        cli,
        ["-m", f"ollama/{target.chat_model}", "-o", "num_predict", "3", "--no-log", "Hello"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip()
    listed = CliRunner().invoke(cli, ["models", "list"], catch_exceptions=False)
    assert f"ollama/{target.chat_model}" in listed.output
