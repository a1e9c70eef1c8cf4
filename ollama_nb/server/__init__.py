"""The local ``ollama serve``: found, tuned for this machine, started, shared and stopped.

Public entry points (``get_manager()`` gives the one for the process-wide runtime)::

    start() / stop() / restart() / status() / tune_report() / warm(model)
    ensure_running(runtime)   auto-start hook for the runtime's connection path
    active_profile_name()     the profile the running server was started with (telemetry)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    ensure_running,
    get_manager,
)
from .process import LockTimeoutError, NotOwnedError, PortInUseError, ServerStartError
from .profiles import ProfileError, choose_profile, load_profiles
from .settings import ServerSettings, load_server_settings

if TYPE_CHECKING:
    from ..runtime import Runtime

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
    "active_profile_name",
    "choose_profile",
    "detect_hardware",
    "ensure_running",
    "find_ollama",
    "get_manager",
    "load_profiles",
    "load_server_settings",
    "warm",
]


def warm(model: str, runtime: Runtime | None = None) -> WarmResult:
    """Preload ``model`` so the next cell does not pay the cold load (``%ollama use NAME --warm``)."""
    return get_manager(runtime).warm(model)


def active_profile_name(runtime: Runtime | None = None) -> str | None:
    """The tuning profile of the server ollama_nb started at the current host, if any.

    Reads only the state file: cheap enough to call for every telemetry record.
    """
    manager = get_manager(runtime)
    server = manager.process()
    state = server.read_state()
    if state is None or server.owned_process(state) is None:
        return None
    return state.profile
