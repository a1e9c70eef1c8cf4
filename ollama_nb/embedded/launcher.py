"""Running the embedded server the way the server manager runs ``ollama serve``.

The manager's process machinery (state file, lock, log, shared clients, "stop only what we
started") expects an executable that takes ``serve``. A two-line launcher script that runs
``python -m ollama_nb.embedded serve`` with this interpreter gives it exactly that, so the
embedded server is started, adopted, reported and stopped by the same code as Ollama
(``ollama_nb.ollama_process.embedded_start``; this module knows nothing of the manager).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from ..infrastructure.private_files import private_dir
from .models import prepare_models

LAUNCHER_NAME = "ollama-nb-embedded.cmd" if os.name == "nt" else "ollama-nb-embedded"
#: The environment the embedded server is started with: one slot (see llama_engine).
EMBEDDED_ENV = {"OLLAMA_NUM_PARALLEL": "1"}
EMBEDDED_PROFILE = "embedded"


def embedded_available() -> bool:
    """``llama-cpp-python`` is importable (nothing imported); models are fetched on first use."""
    return importlib.util.find_spec("llama_cpp") is not None


def launcher_path(data_dir: Path) -> Path:
    """Write (or refresh) the launcher for this interpreter and return its path."""
    folder = private_dir(data_dir / "embedded", within=data_dir)
    path = folder / LAUNCHER_NAME
    if os.name == "nt":
        text = f'@"{sys.executable}" -m ollama_nb.embedded %*\r\n'
    else:
        text = f'#!/bin/sh\nexec "{sys.executable}" -m ollama_nb.embedded "$@"\n'
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.chmod(0o700)  # run by this user only, like everything in the data folder
        os.replace(partial, path)
    return path


def embedded_env(data_dir: Path) -> dict[str, str]:
    """The server's environment: one slot, and the data folder its models were fetched to."""
    return {**EMBEDDED_ENV, "OLLAMA_NB_DATA_DIR": str(data_dir)}


def prepared_launcher(data_dir: Path) -> Path:
    """The launcher, after fetching the default models once (see ``prepare_models``)."""
    prepare_models(data_dir)
    return launcher_path(data_dir)


def is_embedded_binary(binary: str) -> bool:
    """Whether a server state's ``binary`` is our launcher (i.e. the embedded backend)."""
    return Path(binary).name == LAUNCHER_NAME
