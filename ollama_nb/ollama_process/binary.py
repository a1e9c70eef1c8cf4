"""Finding the ``ollama`` executable the way a user would expect.

Order: the configured path, then ``PATH``, then where the installers put it (the
macOS app bundle, Homebrew on Apple Silicon and Intel, the Linux install script).
A Jupyter kernel started from the Dock or launchd often has a minimal ``PATH``,
which is why the fixed locations matter.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..domain import ConfigurationError


class OllamaNotInstalledError(ConfigurationError):
    """No ``ollama`` executable was found anywhere we looked."""


INSTALL_HINT = {
    "darwin": "Install Ollama from https://ollama.com/download (or `brew install ollama`), "
    "or set OLLAMA_NB_SERVER_BINARY to its path.",
    "linux": "Install Ollama with `curl -fsSL https://ollama.com/install.sh | sh`, "
    "or set OLLAMA_NB_SERVER_BINARY to its path.",
}


def usual_locations(platform: str = sys.platform, home: Path | None = None) -> list[Path]:
    home = home or Path.home()
    if platform == "darwin":
        return [
            Path("/Applications/Ollama.app/Contents/Resources/ollama"),
            home / "Applications/Ollama.app/Contents/Resources/ollama",
            Path("/opt/homebrew/bin/ollama"),
            Path("/usr/local/bin/ollama"),
        ]
    return [Path("/usr/local/bin/ollama"), Path("/usr/bin/ollama"), home / ".local/bin/ollama"]


def _runnable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_ollama(
    configured: Path | None = None,
    *,
    which: Callable[[str], str | None] = shutil.which,
    locations: Sequence[Path] | None = None,
    platform: str = sys.platform,
) -> Path:
    """The executable to run, or an error saying how to install or configure one."""
    if configured is not None:
        path = configured.expanduser()
        if not path.exists():
            raise ConfigurationError(
                f"OLLAMA_NB_SERVER_BINARY={configured} does not exist.",
                hint="Point it at the ollama executable, or unset it to search PATH.",
            )
        if not _runnable(path):
            raise ConfigurationError(
                f"OLLAMA_NB_SERVER_BINARY={configured} is not an executable file.",
                hint=f"Check the path, or make it executable (chmod +x {path}).",
            )
        return path
    found = which("ollama")
    if found:
        return Path(found)
    for candidate in locations if locations is not None else usual_locations(platform):
        if _runnable(candidate):
            return candidate
    key = "darwin" if platform == "darwin" else "linux"
    raise OllamaNotInstalledError(
        "Cannot find the `ollama` executable (looked in PATH and the usual install folders).",
        hint=INSTALL_HINT[key],
    )
