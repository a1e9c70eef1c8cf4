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
from .domain import (
    ChatMessage,
    ChatResult,
    GenerationOptions,
    ModelNotFoundError,
    OllamaNbError,
    ServerUnavailableError,
)
from .runtime import get_runtime

__all__ = [
    "ChatMessage",
    "ChatResult",
    "GenerationOptions",
    "ModelNotFoundError",
    "OllamaNbError",
    "ServerUnavailableError",
    "__version__",
    "achat",
    "aembed",
    "agenerate",
    "chat",
    "configure",
    "copy",
    "delete",
    "embed",
    "generate",
    "get_runtime",
    "models",
    "ps",
    "pull",
    "show",
    "stream_chat",
    "version",
]
