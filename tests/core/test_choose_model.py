"""No model named and no default set: the server's choice, or a list to choose from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import ollama_nb
from ollama_nb.domain import InvalidInputError
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing import StandinConfig
from ollama_nb.testing.pytest_plugin import StandinFactory
from ollama_nb.testing.standin import DEFAULT_INSTALLED


def _runtime(url: str, data_dir: Path) -> Iterator[Runtime]:
    runtime = Runtime(load_settings(host=url, data_dir=data_dir, retry_backoff_s=0.0))
    previous = set_runtime(runtime)
    yield runtime
    runtime.close()
    set_runtime(previous)


@pytest.fixture
def several(ollama_standin_factory: StandinFactory, tmp_path: Path) -> Iterator[Runtime]:
    """The stand-in's usual catalogue: three chat models and one embedding model."""
    yield from _runtime(ollama_standin_factory().url, tmp_path)


@pytest.fixture
def single(ollama_standin_factory: StandinFactory, tmp_path: Path) -> Iterator[Runtime]:
    """One chat model and one embedding model installed."""
    cards = tuple(
        c for c in DEFAULT_INSTALLED if c.name in ("qwen3:0.6b", "nomic-embed-text:latest")
    )
    yield from _runtime(ollama_standin_factory(StandinConfig(models=cards)).url, tmp_path)


def test_the_only_chat_model_answers_when_none_is_named(single: Runtime) -> None:
    assert ollama_nb.chat("hi").model == "qwen3:0.6b"
    assert single.settings.default_model is None  # chosen per request, not saved


def test_the_only_embedding_model_embeds_when_none_is_named(several: Runtime) -> None:
    assert len(ollama_nb.embed(["a", "b"]).embeddings) == 2


def test_several_chat_models_give_an_error_that_lists_them(several: Runtime) -> None:
    with pytest.raises(InvalidInputError) as caught:
        ollama_nb.chat("hi")
    message = str(caught.value)
    assert message.startswith("No model given and no default model set. Installed chat models:")
    for name in ("llama3.2:latest", "qwen3:0.6b", "gemma3:4b"):
        assert name in message
    assert "nomic-embed-text" not in message  # it cannot chat
    assert "%ollama use llama3.2:latest" in message


def test_an_empty_server_says_nothing_is_installed(
    ollama_standin_factory: StandinFactory, tmp_path: Path
) -> None:
    for _ in _runtime(ollama_standin_factory(StandinConfig(models=())).url, tmp_path):
        with pytest.raises(InvalidInputError, match="No models are installed on the server"):
            ollama_nb.chat("hi")
