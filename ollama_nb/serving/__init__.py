"""Ollama's REST API as a server of ours, for engines that produce the words.

Layers, outside in::

    server.Server        tornado app, sockets, its own loop thread (or the CLI's main thread)
      api                the documented routes: validation, status codes, NDJSON, timings
      base               Host-header rule, Ollama-shaped errors, cancel on client disconnect
      state / scheduler  installed and loaded models, keep-alive, slots and the 503 queue
      catalogue          model cards (what tags/show/ps report, which engine runs a model)
      engine.Engine      the seam: load, unload, generate pieces, embed

Two engines plug in: the llama.cpp engine (``ollama_nb.embedded``), which users run when
they have no Ollama, and the scripted engine of the stand-in (``ollama_nb.testing``),
which adds faults, a request log and ``/_standin/*`` admin routes on top of this package.
Nothing here knows about either, and nothing here has a test hook.
"""

from __future__ import annotations

from .catalogue import ModelCard, canonical_name
from .config import SERVING_VERSION, ServerConfig
from .engine import (
    Embedding,
    Engine,
    EngineMessage,
    Finish,
    GenerationRequest,
    ImageInfo,
    Piece,
    ToolCall,
)
from .server import Server
from .wire import ApiError

__all__ = [
    "SERVING_VERSION",
    "ApiError",
    "Embedding",
    "Engine",
    "EngineMessage",
    "Finish",
    "GenerationRequest",
    "ImageInfo",
    "ModelCard",
    "Piece",
    "Server",
    "ServerConfig",
    "ToolCall",
    "canonical_name",
]
