"""Use cases and the ports they need."""

from .ports import (
    Clock,
    ConcurrencyGate,
    GateStats,
    ImageCache,
    ImageProcessor,
    Lane,
    MetricsSink,
    OllamaGateway,
)
from .replies import ReplyAccumulator
from .use_cases import Ports

__all__ = [
    "Clock",
    "ConcurrencyGate",
    "GateStats",
    "ImageCache",
    "ImageProcessor",
    "Lane",
    "MetricsSink",
    "OllamaGateway",
    "Ports",
    "ReplyAccumulator",
]
