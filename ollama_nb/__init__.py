"""ollama_nb: a local Ollama server as a first-class citizen of Jupyter.

``%load_ext ollama_nb`` for the magics; ``ollama_nb.chat(...)`` and friends for
code. Importing opens no connection and starts no thread.
"""

import sys
from typing import Any

from ._version import __version__
from .api import (
    achat,
    aembed,
    agenerate,
    chat,
    configure,
    copy,
    delete,
    embed,
    generate,
    models,
    ps,
    pull,
    show,
    stream_chat,
    version,
)
from .application.context_guard import ContextLengthWarning
from .batch import abatch, acompare, batch, compare  # registers the ``df.ollama`` accessor

if "dask.dataframe" in sys.modules:  # Dask is in use: ``ddf.ollama`` works at once
    from . import dask as _dask  # noqa: F401  (registers the accessor; else `import ollama_nb.dask`)
from .domain import (
    ChatMessage,
    ChatResult,
    GenerationOptions,
    ModelNotFoundError,
    OllamaNbError,
    ServerUnavailableError,
)
from .metrics_api import metrics, projects, report, summary, usage
from .runtime import get_runtime


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext ollama_nb``; IPython's magic machinery is imported only then."""
    from .notebook.extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook.extension import unload_ipython_extension as unload

    unload(ipython)


_WIDGETS = frozenset({"ChatPanel", "Dashboard", "ModelManager"})


def __getattr__(name: str) -> object:
    """The panels, imported on first use so ``import ollama_nb`` does not load ipywidgets."""
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'ollama_nb' has no attribute {name!r}")


__all__ = [
    "ChatMessage",
    "ChatPanel",
    "ChatResult",
    "ContextLengthWarning",
    "Dashboard",
    "GenerationOptions",
    "ModelManager",
    "ModelNotFoundError",
    "OllamaNbError",
    "ServerUnavailableError",
    "__version__",
    "abatch",
    "achat",
    "acompare",
    "aembed",
    "agenerate",
    "batch",
    "chat",
    "compare",
    "configure",
    "copy",
    "delete",
    "embed",
    "generate",
    "get_runtime",
    "load_ipython_extension",
    "metrics",
    "models",
    "projects",
    "ps",
    "pull",
    "report",
    "show",
    "stream_chat",
    "summary",
    "unload_ipython_extension",
    "usage",
    "version",
]
