"""Testing support for ``ollama_nb``: a stand-in Ollama server, pytest fixtures and a
hand-moved clock."""

from __future__ import annotations

from .clock import ManualClock
from .standin import StandinConfig, StandinHandle, StandinServer

__all__ = ["ManualClock", "StandinConfig", "StandinHandle", "StandinServer"]
