"""``%load_ext ollama_nb`` / ``%unload_ext ollama_nb``.

Loading registers the magics, the per-cell hook that keys conversation turns,
and an input rewrite for one-line questions; importing this module imports the
feature modules that add ``%ollama`` subcommands. It opens no connection and starts no thread; the
first request does.
"""

from __future__ import annotations

import re
from typing import Any

from ..application.conversations import forget_shell_conversations
from ..presentation.display import register_formatters, unregister_formatters
from ..runtime import get_runtime
from . import (  # each registers its ``%ollama`` subcommands
    core_commands,  # noqa: F401
    embedded_commands,  # noqa: F401
    metrics_commands,  # noqa: F401
    panel_commands,  # noqa: F401
    pool_commands,  # noqa: F401
    server_commands,  # noqa: F401
)
from .magics import OllamaMagics

_HOOK = "pre_run_cell"
#: ``%chat what is X?`` (optionally ``name = %chat ...``): a line ending in ``?``
#: would otherwise be IPython's help syntax and never reach the magic.
_QUESTION = re.compile(r"^(\s*)(?:([A-Za-z_][\w.]*)\s*=\s*)?%chat\s+(.*\?)\s*$")


def question_lines(lines: list[str]) -> list[str]:
    """Cleanup transformer: run ``%chat ...?`` lines through ``run_line_magic``."""
    rewritten = []
    for line in lines:
        match = _QUESTION.match(line)
        if match is None:
            rewritten.append(line)
            continue
        indent, target, rest = match.groups()
        call = f"get_ipython().run_line_magic('chat', {rest!r})"
        ending = "\n" if line.endswith("\n") else ""
        rewritten.append(
            f"{indent}{target} = {call}{ending}" if target else f"{indent}{call}{ending}"
        )
    return rewritten


def load_ipython_extension(ip: Any) -> None:
    if "OllamaMagics" in ip.magics_manager.registry:
        return  # loading twice must not register the hook twice
    magics = OllamaMagics(ip, get_runtime())  # every magic and subcommand uses this runtime
    ip.register_magics(magics)
    ip.events.register(_HOOK, magics.state.before_cell)
    ip.input_transformers_cleanup.append(question_lines)
    register_formatters(ip)


def unload_ipython_extension(ip: Any) -> None:
    manager = ip.magics_manager
    magics = manager.registry.pop("OllamaMagics", None)
    if magics is None:
        return
    forget_shell_conversations(ip)
    for kind, names in magics.magics.items():
        for name in names:
            manager.magics[kind].pop(name, None)
    unregister_formatters(ip)
    if question_lines in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.remove(question_lines)
    try:
        ip.events.unregister(_HOOK, magics.state.before_cell)
    except ValueError:
        return
