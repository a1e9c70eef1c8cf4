"""``%ollama backend`` and the "Backend" section of ``%ollama status``.

Says plainly what is answering at the host: a real Ollama, ollama_nb's embedded llama.cpp
server (and what its small models can do), or the scripted stand-in used in
tests. The server's ``/api/version`` suffix is the signal, so nothing pretends to be Ollama.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError

from ..application import use_cases
from ..domain import ModelName, OllamaNbError
from ..runtime import Runtime
from .commands import subcommand


def describe_backend(version: str | None, caps: Mapping[str, int] | None = None) -> str:
    """One or two lines naming the backend behind a server version string.

    ``caps`` maps each embedded model with a default answer length to that length
    (its ``num_predict`` parameter), so nobody wonders why answers stop early.
    """
    from ..embedded import BASE_MODEL_NOTE, embedded_available

    if version is None:
        if embedded_available():
            return "No server answers. `%ollama start` uses the embedded llama.cpp backend."
        return (
            "No server answers. Start Ollama, or install the embedded backend: "
            'pip install "ollama_nb[embedded]".'
        )
    if version.endswith("-embedded"):
        lines = [f"embedded: llama.cpp via llama-cpp-python (version {version}). {BASE_MODEL_NOTE}"]
        lines += [
            f"{name}: answers stop after {cap} tokens by default (num_predict; "
            f"`-o num_predict=N` asks for more)."
            for name, cap in (caps or {}).items()
        ]
        return "\n".join(lines)
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


def _answer_caps(runtime: Runtime) -> dict[str, int]:
    """Installed models whose parameters set a default ``num_predict`` (from ``/api/show``)."""

    async def probe(ports: use_cases.Ports) -> dict[str, int]:
        caps: dict[str, int] = {}
        try:
            for summary in await use_cases.list_models(ports):
                info = await use_cases.show_model(ports, ModelName(summary.name))
                match = _NUM_PREDICT.search(info.parameters)
                if match and int(match.group(1)) > 0:
                    caps[summary.name] = int(match.group(1))
        except OllamaNbError:
            return caps
        return caps

    return runtime.run(probe)


_NUM_PREDICT = re.compile(r"^num_predict\s+(-?\d+)\s*$", re.MULTILINE)


def _describe(runtime: Runtime) -> str:
    version = _version(runtime)
    embedded = version is not None and version.endswith("-embedded")
    return describe_backend(version, _answer_caps(runtime) if embedded else None)


def backend_section(runtime: Runtime) -> tuple[str, object] | None:
    """The "Backend" part of ``%ollama status``."""
    return "Backend", _describe(runtime)


@subcommand(
    "backend", "which backend serves: Ollama, the embedded llama.cpp server or the stand-in"
)
def backend(line: str, shell: Any, runtime: Runtime) -> object:
    if line.strip():
        raise UsageError("Usage: %ollama backend")
    return _Text(_describe(runtime))


class _Text(str):
    """A plain-text result that displays without quotes."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def _register_status_section() -> None:
    from .core_commands import STATUS_SECTIONS

    if backend_section not in STATUS_SECTIONS:
        STATUS_SECTIONS.append(backend_section)


_register_status_section()
