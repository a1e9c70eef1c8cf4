"""``%ollama panel chat|models|metrics``: the widget panels, from a magic.

The panel is the cell's value, so it displays under the cell; ``x = %ollama
panel chat`` keeps a handle to close it later.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from ..runtime import Runtime
from .commands import subcommand
from .magics import state_of

PANELS = ("chat", "models", "metrics")
_ALIASES = {"model": "models", "dashboard": "metrics"}


@subcommand("panel", "a clickable panel: panel chat | models | metrics")
def panel(line: str, shell: Any, runtime: Runtime) -> object:
    words = line.split()
    if len(words) != 1:
        raise UsageError(f"Usage: %ollama panel {'|'.join(PANELS)}")
    kind = _ALIASES.get(words[0], words[0])
    # ipywidgets loads with the first panel, not with the extension.
    if kind == "chat":
        from ..widgets.chat_panel import ChatPanel

        return ChatPanel(runtime=runtime, shell=shell, store=state_of(shell).conversations)
    if kind == "models":
        from ..widgets.model_manager import ModelManager

        return ModelManager(runtime=runtime)
    if kind == "metrics":
        from ..widgets.dashboard import Dashboard

        return Dashboard(runtime=runtime)
    raise UsageError(f"Unknown panel {words[0]!r}: choose one of {', '.join(PANELS)}.")
