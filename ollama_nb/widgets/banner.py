# mypy: disable-error-code="import-untyped"
# mypy: disallow-subclassing-any=False
# (ipywidgets ships no type information; the panels subclass its boxes.)
"""The line above each panel that says what went wrong and what to do.

A panel never shows a traceback: errors become one red line (the error's own
one/two-line message). When the server is not answering and it could be
started here, the banner offers the start action as a button.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets

from ..domain import OllamaNbError, ServerUnavailableError
from .background import Background

_COLOURS = {"error": "#c62828", "warning": "#8a6d00", "note": "#555"}
_PREFIX = {"error": "✖ ", "warning": "⚠ ", "note": ""}


class Banner(widgets.VBox):
    """A message line plus, for an unreachable local server, a "Start Ollama" button."""

    def __init__(self, background: Background, *, on_started: Callable[[], None] | None = None):
        self._background = background
        self._on_started = on_started
        self.message = widgets.HTML()
        self.start_button = widgets.Button(
            description="Start Ollama here",
            icon="play",
            button_style="primary",
            tooltip="Start `ollama serve` on this machine with the tuned profile (%ollama start)",
            layout=widgets.Layout(display="none", width="auto"),
        )
        self.start_button.on_click(lambda _: self.start_server())
        self.text = ""
        self.level = ""
        super().__init__([self.message, self.start_button])

    def show(self, text: str, level: str = "note") -> None:
        self.text, self.level = text, level
        colour = _COLOURS.get(level, "#555")
        self.message.value = (
            f'<div style="color:{colour}">{_PREFIX.get(level, "")}{html.escape(text)}</div>'
        )
        if level != "error":
            self.start_button.layout.display = "none"

    def error(self, error: BaseException) -> None:
        """Show ``error`` as one line; unexpected errors say so and name their type."""
        if isinstance(error, OllamaNbError):
            self.show(str(error), "error")
        else:
            self.show(f"Unexpected {type(error).__name__}: {error}", "error")
        startable = isinstance(error, ServerUnavailableError) and _can_start_here(self._background)
        self.start_button.layout.display = "" if startable else "none"
        self.start_button.disabled = False

    def warning(self, text: str) -> None:
        self.show(text, "warning")

    def note(self, text: str) -> None:
        self.show(text, "note")

    def clear(self) -> None:
        self.text = self.level = ""
        self.message.value = ""
        self.start_button.layout.display = "none"

    def start_server(self) -> None:
        """What the button does: start the local server off the kernel's thread, then refresh."""
        self.start_button.disabled = True
        self.note("Starting Ollama…")
        self._background.submit(self._start())

    async def _start(self) -> None:
        manager = self._background.runtime.server
        try:
            report = await self._background.in_thread(manager.start)
        except Exception as exc:  # shown to the user, the panel stays usable
            self.error(exc)
            self.start_button.disabled = False
            return
        self.note(" ".join(str(report).splitlines()))
        if self._on_started is not None:
            self._on_started()


def _can_start_here(background: Background) -> bool:
    """A start makes sense only for a plain-http server on this machine."""
    host = background.runtime.settings.ollama_host
    return bool(host.is_local and host.scheme == "http")
