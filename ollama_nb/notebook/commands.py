"""The ``%ollama`` subcommand table.

Each feature keeps its subcommands in its own module and registers them here
with ``@subcommand``; the magic only dispatches. A handler receives the rest of
the line and the shell, parses it with IPython's ``magic_arguments`` and
returns an object to display (or None). User mistakes are raised as
``UsageError`` or ``OllamaNbError`` and shown as one line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[[str, Any], object]

#: Modules that register subcommands when imported; a missing one just means
#: that feature is not installed in this build.
FEATURE_MODULES = (
    "ollama_nb.notebook.core_commands",
    "ollama_nb.notebook.server_commands",
    "ollama_nb.notebook.metrics_commands",
    "ollama_nb.notebook.panel_commands",
    "ollama_nb.notebook.embedded_commands",
    "ollama_nb.notebook.pool_commands",
)


@dataclass(frozen=True, slots=True)
class Subcommand:
    name: str
    handler: Handler
    summary: str
    aliases: tuple[str, ...] = ()


_TABLE: dict[str, Subcommand] = {}


def subcommand(
    name: str, summary: str, *, aliases: tuple[str, ...] = ()
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as ``%ollama NAME``."""

    def register(handler: Handler) -> Handler:
        command = Subcommand(name, handler, summary, aliases)
        for key in (name, *aliases):
            _TABLE[key] = command
        return handler

    return register


def load_feature_modules() -> None:
    for module in FEATURE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def lookup(name: str) -> Subcommand | None:
    return _TABLE.get(name)


def all_subcommands() -> list[Subcommand]:
    """Each command once, in name order."""
    return sorted({id(c): c for c in _TABLE.values()}.values(), key=lambda c: c.name)
