"""A stand-in Ollama server for tests, CI notebooks, benchmarks and offline work.

It is :mod:`ollama_nb.serving` (Ollama's documented REST API over real HTTP) answering
deterministically through a scripted engine (or any :class:`Engine` registered per model),
plus what only a test double may have: fault injection, a log of request bodies, and
``/_standin/*`` admin endpoints.
"""

from __future__ import annotations

from ...serving.catalogue import ModelCard, canonical_name
from ...serving.engine import (
    Embedding,
    Engine,
    EngineMessage,
    Finish,
    GenerationRequest,
    ImageInfo,
    Piece,
    ToolCall,
)
from .catalogue import DEFAULT_INSTALLED, DEFAULT_REGISTRY
from .config import STANDIN_VERSION, StandinConfig
from .faults import Fault
from .handle import StandinHandle
from .scripted import ScriptedEngine
from .server import StandinServer

__all__ = [
    "DEFAULT_INSTALLED",
    "DEFAULT_REGISTRY",
    "STANDIN_VERSION",
    "Embedding",
    "Engine",
    "EngineMessage",
    "Fault",
    "Finish",
    "GenerationRequest",
    "ImageInfo",
    "ModelCard",
    "Piece",
    "ScriptedEngine",
    "StandinConfig",
    "StandinHandle",
    "StandinServer",
    "ToolCall",
    "canonical_name",
]
