"""``%ollama panel ...`` in a real shell."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from ollama_nb.widgets import ChatPanel, Dashboard, ModelManager

from .conftest import Env


def test_each_panel_opens_from_the_magic(env: Env) -> None:
    env.ip.run_line_magic("load_ext", "ollama_nb")
    for word, kind in (("chat", ChatPanel), ("models", ModelManager), ("metrics", Dashboard)):
        panel = env.ip.run_line_magic("ollama", f"panel {word}")
        assert isinstance(panel, kind)
        panel.close()


def test_an_unknown_panel_is_a_one_line_usage_error(env: Env) -> None:
    env.ip.run_line_magic("load_ext", "ollama_nb")
    with pytest.raises(UsageError, match="Unknown panel 'charts'"):
        env.ip.run_line_magic("ollama", "panel charts")
    with pytest.raises(UsageError, match="Usage: %ollama panel"):
        env.ip.run_line_magic("ollama", "panel")


def test_the_chat_panel_shares_the_magics_threads(env: Env) -> None:
    env.ip.run_line_magic("load_ext", "ollama_nb")
    panel = env.ip.run_line_magic("ollama", "panel chat")
    from ollama_nb.notebook.magics import state_of

    assert panel.store is state_of(env.ip).conversations
    panel.close()
