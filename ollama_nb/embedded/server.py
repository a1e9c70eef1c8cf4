"""The embedded server: our Ollama-API server with the llama.cpp engine behind it.

Real models only (nothing scripted, nothing to pull), one inference at a time per model,
and a version string that says "embedded" so nothing pretends to be Ollama. It is built
from :mod:`ollama_nb.serving` alone: no fault injection, no request log, no admin routes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..serving.config import MAX_BODY_BYTES, ServerConfig
from ..serving.origins import default_origins
from ..serving.server import Server
from .llama_engine import LlamaEngine
from .models import (
    DEFAULT_MODEL,
    EMBEDDING_MODEL,
    ENGINE_NAME,
    EmbeddedConfig,
    EmbeddedNotInstalledError,
    install_hint,
    resolve_models,
)

EMBEDDED_VERSION = "0.13.0-embedded"
"""Semver-shaped for clients that parse it; the suffix tells people what is serving."""


def require_llama_cpp() -> None:
    """Fail with the install command (not an ImportError traceback) when the extra is missing."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise EmbeddedNotInstalledError(
            "The embedded backend needs llama-cpp-python, which is not installed.",
            hint=install_hint(),
        ) from None


def build_server(
    embedded: EmbeddedConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    max_queue: int = 512,
    keep_alive_s: float = 300.0,
    origins: tuple[str, ...] = default_origins(),
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Server:
    """A ready-to-start server for the configured GGUF models (validated now, loaded lazily)."""
    require_llama_cpp()
    config = embedded or EmbeddedConfig.from_environ()
    resolved = resolve_models(config)
    cards = tuple(card for card, _ in resolved)
    engine = LlamaEngine(
        {card.name: info for card, info in resolved},
        memory_available=config.memory_available,
        n_threads=config.n_threads,
    )
    server = ServerConfig(
        host=host,
        port=port,
        num_parallel=1,  # llama.cpp contexts are not thread-safe: one slot per model
        max_queue=max_queue,
        keep_alive_s=keep_alive_s,
        models=cards,
        registry=cards,
        version=EMBEDDED_VERSION,
        origins=origins,
        max_body_bytes=max_body_bytes,
    )
    return Server(server, {ENGINE_NAME: engine})


def server_from_environ(environ: Mapping[str, str] | None = None) -> Server:
    """Configured like ``ollama serve``: OLLAMA_HOST, OLLAMA_MAX_QUEUE, OLLAMA_KEEP_ALIVE,
    OLLAMA_ORIGINS (and our OLLAMA_NB_MAX_BODY_BYTES)."""
    env = os.environ if environ is None else environ
    base = ServerConfig.from_environ(env)
    return build_server(
        EmbeddedConfig.from_environ(env),
        host=base.host,
        port=base.port,
        max_queue=base.max_queue,
        keep_alive_s=base.keep_alive_s,
        origins=base.origins,
        max_body_bytes=base.max_body_bytes,
    )


def banner(models: tuple[str, ...] = (DEFAULT_MODEL, EMBEDDING_MODEL)) -> str:
    """The one line shown when the embedded server starts in place of Ollama."""
    notes = {DEFAULT_MODEL: " (chat)", EMBEDDING_MODEL: " (embeddings)"}
    names = ", ".join(f"{m}{notes.get(m.removesuffix(':latest'), '')}" for m in models)
    return (
        f"Embedded server (llama.cpp via llama-cpp-python) serving {names}; no Ollama "
        "found. For real models install Ollama: https://ollama.com/download"
    )
