"""The package's public names are a contract: this test pins them."""

from __future__ import annotations

import subprocess
import sys

import ollama_nb

EXPECTED = {
    "ChatMessage", "ChatPanel", "ChatResult", "ContextLengthWarning", "Dashboard", "GenerationOptions", "ModelManager",
    "ModelNotFoundError", "OllamaNbError", "ServerUnavailableError", "__version__", "abatch",
    "achat", "acompare", "aembed", "agenerate", "batch", "chat", "compare", "configure", "copy", "delete",
    "embed", "generate", "get_runtime", "load_ipython_extension", "metrics", "models", "projects",
    "ps", "pull", "report", "show", "stream_chat", "summary", "unload_ipython_extension", "usage",
    "version",
}  # fmt: skip


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert set(ollama_nb.__all__) == EXPECTED
    for name in ollama_nb.__all__:
        assert getattr(ollama_nb, name) is not None


def test_import_has_no_side_effects() -> None:
    """No thread, no connection, no widgets or IPython magics machinery at import."""
    code = (
        "import sys, threading, ollama_nb\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert 'ipywidgets' not in sys.modules\n"
        "assert 'ollama_nb.notebook.magics' not in sys.modules\n"
        "assert ollama_nb.runtime._runtime is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
