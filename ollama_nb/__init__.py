"""ollama_nb: a local Ollama server as a first-class citizen of Jupyter.

``%load_ext ollama_nb`` for the magics; ``ollama_nb.chat(...)`` and friends for
code. Importing opens no connection and starts no thread.
"""

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
from .batch import abatch, batch  # registers the ``df.ollama`` accessor
from .domain import (
    ChatMessage,
    ChatResult,
    GenerationOptions,
    ModelNotFoundError,
    OllamaNbError,
    ServerUnavailableError,
)
from .notebook.extension import load_ipython_extension, unload_ipython_extension
from .runtime import get_runtime
from .telemetry import metrics, report

__all__ = [
    "ChatMessage",
    "ChatResult",
    "GenerationOptions",
    "ModelNotFoundError",
    "OllamaNbError",
    "ServerUnavailableError",
    "__version__",
    "abatch",
    "achat",
    "aembed",
    "agenerate",
    "batch",
    "chat",
    "configure",
    "copy",
    "delete",
    "embed",
    "generate",
    "get_runtime",
    "load_ipython_extension",
    "metrics",
    "models",
    "ps",
    "pull",
    "report",
    "show",
    "stream_chat",
    "unload_ipython_extension",
    "version",
]
