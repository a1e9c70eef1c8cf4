"""The Jupyter server extension behind the JupyterLab status bar item and sidebar.

Enabled by ``etc/jupyter/jupyter_server_config.d/ollama_nb.json`` shipped in the
wheel; importing this package does nothing until jupyter_server loads it.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "ollama_nb.jupyter_server_ext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from ..runtime import get_runtime
    from .handlers import NAMESPACE, setup_handlers

    setup_handlers(serverapp.web_app, get_runtime)
    serverapp.log.info("ollama_nb: JupyterLab endpoints registered under /%s/", NAMESPACE)
