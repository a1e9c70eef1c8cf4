"""Starting the embedded backend with the same process machinery as ``ollama serve``.

The launcher (``ollama_nb.embedded.launcher``) makes the embedded server look like an
``ollama`` executable; this starts it through ``ServerProcess``, so its state file
records the launcher as the binary and ``%ollama stop`` / status treat it like Ollama.
It lives in ``ollama_process`` (which may import ``embedded``), so ``embedded`` never
imports the process manager and the two parts stay without a cycle.
"""

from __future__ import annotations

from pathlib import Path

from ..embedded.launcher import EMBEDDED_PROFILE, embedded_env, prepared_launcher
from ..infrastructure.host import OllamaHost
from .process import Progress, ServerProcess, StartOutcome


def start_embedded_server(
    host: OllamaHost,
    data_dir: Path,
    *,
    timeout_s: float = 60.0,
    progress: Progress | None = None,
) -> StartOutcome:
    """Start the embedded server at ``host`` (or adopt ours / use whatever answers there)."""
    server = ServerProcess(host, data_dir)
    return server.start(
        lambda: prepared_launcher(data_dir),
        embedded_env(data_dir),
        profile=EMBEDDED_PROFILE,
        timeout_s=timeout_s,
        progress=progress,
    )
