# mypy: disable-error-code="import-untyped"
# mypy: disallow-subclassing-any=False
# (ipywidgets ships no type information; the panels subclass its boxes.)
"""A multi-line input that sends on Shift+Enter.

ipywidgets' ``Textarea`` reports no key presses, so this is the one custom
front-end piece: a few lines of JavaScript through anywidget (an ES module,
no build step). Without anywidget installed, ``prompt_box()`` falls back to a
plain ``Textarea`` and the Send button.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import traitlets

_ESM = """
function render({ model, el }) {
  const area = document.createElement("textarea");
  area.rows = 3;
  area.className = "ollama-nb-prompt";
  area.style.width = "100%";
  area.style.boxSizing = "border-box";
  area.style.fontFamily = "inherit";
  // Keep JupyterLab's own Shift+Enter (run cell) away from this box.
  area.setAttribute("data-lm-suppress-shortcuts", "true");
  const sync = () => {
    area.value = model.get("value");
    area.placeholder = model.get("placeholder");
    area.disabled = model.get("disabled");
  };
  sync();
  area.addEventListener("input", () => {
    model.set("value", area.value);
    model.save_changes();
  });
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.shiftKey) {
      event.preventDefault();
      event.stopPropagation();
      model.set("value", area.value);
      model.save_changes();
      model.send({ type: "submit" });
    }
  });
  model.on("change:value", () => {
    if (area.value !== model.get("value")) area.value = model.get("value");
  });
  model.on("change:placeholder", sync);
  model.on("change:disabled", sync);
  el.appendChild(area);
}
export default { render };
"""

Submit = Callable[[Any], None]


def _anywidget_base() -> type[Any] | None:
    try:
        import anywidget
    except ModuleNotFoundError:
        return None
    base: type[Any] = anywidget.AnyWidget
    return base


def prompt_box(placeholder: str, on_submit: Submit) -> widgets.DOMWidget:
    """The input box; ``on_submit(box)`` runs on Shift+Enter (when anywidget is available)."""
    base = _anywidget_base()
    if base is None:
        return widgets.Textarea(
            placeholder=placeholder, rows=3, layout=widgets.Layout(width="100%")
        )
    box: widgets.DOMWidget = _prompt_class(base)(placeholder=placeholder)
    box.on_submit(on_submit)
    return box


_CLASSES: dict[type[Any], type[Any]] = {}


def _prompt_class(base: type[Any]) -> type[Any]:
    """Built once, on first use, so importing the panels does not import anywidget."""
    if base in _CLASSES:
        return _CLASSES[base]

    class PromptBox(base):
        """Text synced as you type; the front end sends ``{"type": "submit"}`` on Shift+Enter."""

        _esm = _ESM
        value = traitlets.Unicode("").tag(sync=True)
        placeholder = traitlets.Unicode("").tag(sync=True)
        disabled = traitlets.Bool(False).tag(sync=True)

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._submit_handlers = widgets.CallbackDispatcher()
            self.on_msg(self._message)

        def on_submit(self, callback: Submit, remove: bool = False) -> None:
            self._submit_handlers.register_callback(callback, remove=remove)

        def submit(self) -> None:
            """What Shift+Enter does in the browser."""
            self._submit_handlers(self)

        def _message(self, _widget: Any, content: Any, _buffers: Any) -> None:
            if isinstance(content, dict) and content.get("type") == "submit":
                self.submit()

    _CLASSES[base] = PromptBox
    return PromptBox
