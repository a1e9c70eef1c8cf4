"""The ``%ollama`` subcommand table.

Each feature keeps its subcommands in its own module and registers them here
with ``@subcommand``; the magic only dispatches. ``extension`` imports those
modules when the extension loads. A handler receives the rest of the line,
the shell and the runtime the extension was loaded with, parses the line with
IPython's ``magic_arguments`` and returns an object to display (or None). User mistakes are raised as
``UsageError`` or ``OllamaNbError`` and shown as one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..runtime import Runtime

Handler = Callable[[str, Any, Runtime], object]


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


def lookup(name: str) -> Subcommand | None:
    return _TABLE.get(name)


def all_subcommands() -> list[Subcommand]:
    """Each command once, in name order."""
    return sorted({id(c): c for c in _TABLE.values()}.values(), key=lambda c: c.name)
