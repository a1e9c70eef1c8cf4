"""A stand-in Ollama server for tests, CI notebooks, benchmarks and offline work.

It speaks Ollama's documented REST API over real HTTP, answers deterministically through a
scripted engine (or any :class:`Engine` registered per model), and adds ``/_standin/*``
admin endpoints for fault injection and request inspection.
"""

from __future__ import annotations

from .catalogue import DEFAULT_INSTALLED, DEFAULT_REGISTRY, ModelCard, canonical_name
from .config import STANDIN_VERSION, StandinConfig
from .engine import (
    ChatMessage,
    Embedding,
    Engine,
    Finish,
    GenerationRequest,
    ImageInfo,
    Piece,
    ToolCall,
)
from .faults import Fault
from .handle import StandinHandle
from .scripted import ScriptedEngine
from .server import StandinServer

__all__ = [
    "DEFAULT_INSTALLED",
    "DEFAULT_REGISTRY",
    "STANDIN_VERSION",
    "ChatMessage",
    "Embedding",
    "Engine",
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
