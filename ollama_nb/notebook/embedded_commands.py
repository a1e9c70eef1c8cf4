"""``%ollama backend`` and the "Backend" section of ``%ollama status``.

Says plainly what is answering at the host: a real Ollama, ollama_nb's embedded llama.cpp
server (and that its default model is a base model), or the scripted stand-in used in
tests. The server's ``/api/version`` suffix is the signal, so nothing pretends to be Ollama.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from ..application import use_cases
from ..domain import OllamaNbError
from ..runtime import Runtime
from .commands import subcommand


def describe_backend(version: str | None) -> str:
    """One or two lines naming the backend behind a server version string."""
    from ..embedded import BASE_MODEL_NOTE, embedded_available

    if version is None:
        if embedded_available():
            return "No server answers. `%ollama start` uses the embedded llama.cpp backend."
        return (
            "No server answers. Start Ollama, or install the embedded backend: "
            'pip install "ollama_nb[embedded]".'
        )
    if version.endswith("-embedded"):
        return f"embedded: llama.cpp via llama-cpp-python (version {version}). {BASE_MODEL_NOTE}"
    if version.endswith("-standin"):
        return f"stand-in: scripted replies for tests (version {version}), not a model runner."
    return f"Ollama {version}"


def _version(runtime: Runtime) -> str | None:
    async def probe(ports: use_cases.Ports) -> str | None:
        try:
            return await use_cases.server_version(ports)
        except OllamaNbError:
            return None

    return runtime.run(probe)


def backend_section(runtime: Runtime) -> tuple[str, object] | None:
    """The "Backend" part of ``%ollama status``."""
    return "Backend", describe_backend(_version(runtime))


@subcommand(
    "backend", "which backend serves: Ollama, the embedded llama.cpp server or the stand-in"
)
def backend(line: str, shell: Any, runtime: Runtime) -> object:
    if line.strip():
        raise UsageError("Usage: %ollama backend")
    return _Text(describe_backend(_version(runtime)))


class _Text(str):
    """A plain-text result that displays without quotes."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def _register_status_section() -> None:
    from .core_commands import STATUS_SECTIONS

    if backend_section not in STATUS_SECTIONS:
        STATUS_SECTIONS.append(backend_section)


_register_status_section()
