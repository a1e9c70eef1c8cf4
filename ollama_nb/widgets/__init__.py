"""Panels for people who would rather click than type magics.

``ChatPanel``, ``ModelManager`` and ``Dashboard`` use the same runtime as the
magics and the Python API (settings, client, metrics, ``%%chat`` threads), run
their requests on its background loop, and stop everything they started when
closed.
"""

from .chat_panel import ChatPanel
from .dashboard import Dashboard
from .model_manager import ModelManager

__all__ = ["ChatPanel", "Dashboard", "ModelManager"]
