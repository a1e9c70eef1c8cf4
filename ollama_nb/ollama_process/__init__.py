"""The local ``ollama serve``: found, tuned for this machine, started, shared and stopped.

The runtime owns one ``ServerManager`` (``ollama_nb.get_runtime().server``)::

    start() / stop() / restart() / status() / tune_report() / warm(model)
    ensure_running()    auto-start hook for the runtime's connection path
    active_profile()    the profile the running server was started with (telemetry)
"""

from __future__ import annotations

from .binary import OllamaNotInstalledError, find_ollama
from .hardware import Hardware, detect_hardware
from .manager import (
    Plan,
    RemoteHostError,
    ServerManager,
    StartReport,
    StatusReport,
    StopReport,
    TuneReport,
    WarmResult,
)
from .process import LockTimeoutError, NotOwnedError, PortInUseError, ServerStartError
from .profiles import ProfileError, choose_profile, load_profiles
from .settings import ServerSettings, load_server_settings

__all__ = [
    "Hardware",
    "LockTimeoutError",
    "NotOwnedError",
    "OllamaNotInstalledError",
    "Plan",
    "PortInUseError",
    "ProfileError",
    "RemoteHostError",
    "ServerManager",
    "ServerSettings",
    "ServerStartError",
    "StartReport",
    "StatusReport",
    "StopReport",
    "TuneReport",
    "WarmResult",
    "choose_profile",
    "detect_hardware",
    "find_ollama",
    "load_profiles",
    "load_server_settings",
]
