"""Testing support for ``ollama_nb``: a stand-in Ollama server and pytest fixtures."""

from __future__ import annotations

from .standin import StandinConfig, StandinHandle, StandinServer

__all__ = ["StandinConfig", "StandinHandle", "StandinServer"]
