"""Simon Willison's ``llm`` with the ``llm-ollama`` plugin, pointed by ``OLLAMA_HOST``."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import NEEDS_SERVER, SHORT, Target

# llm-ollama builds ollama clients per call and never closes them: their sockets are
# collected, not closed. That is the client's leak, not the server's behaviour.
pytestmark = [
    NEEDS_SERVER,
    pytest.mark.timeout(600),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def _collect_leaked_clients() -> Iterator[None]:
    """Collect the leaked sockets here, under this module's filters, not in the next test."""
    yield
    gc.collect()


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
