"""Which models a server has installed and which it can pull.

A model card is the metadata Ollama reports about a model (``/api/tags``, ``/api/show``,
``/api/ps``) plus the name of the engine that runs it, so one HTTP layer can serve models
of several engines side by side. Names are compared the way Ollama compares them: the tag
defaults to ``latest``, the default registry and ``library/`` namespace are implied, case
is ignored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

COMPLETION = "completion"
TOOLS = "tools"
THINKING = "thinking"
VISION = "vision"
EMBEDDING = "embedding"
INSERT = "insert"

_DEFAULT_HOST = "registry.ollama.ai/"
_DEFAULT_NAMESPACE = "library/"
_FIXED_TIME = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def canonical_name(name: str) -> str:
    """The key two spellings of one model share: ``Llama3.2`` -> ``llama3.2:latest``."""
    n = name.strip().lower()
    if n.startswith(_DEFAULT_HOST):
        n = n[len(_DEFAULT_HOST) :]
    if n.startswith(_DEFAULT_NAMESPACE):
        n = n[len(_DEFAULT_NAMESPACE) :]
    if ":" not in n.rsplit("/", 1)[-1]:
        n = f"{n}:latest"
    return n


def _digest_for(name: str) -> str:
    return hashlib.sha256(f"ollama-nb:{name}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ModelCard:
    """Everything the server says about one model; ``engine`` picks who runs it."""

    name: str
    family: str
    parameter_size: str
    parameter_count: int
    quantization_level: str
    capabilities: frozenset[str]
    context_length: int
    embedding_length: int
    size_bytes: int
    engine: str
    """The key of the server's engine that runs this model."""
    format: str = "gguf"
    families: tuple[str, ...] = ()
    template: str = "{{ .Prompt }}"
    parameters: str = ""
    modified_at: datetime = _FIXED_TIME
    digest: str = field(default="")
    engine_source: str = ""
    """Engine-specific locator (e.g. a GGUF path for the llama.cpp engine)."""
    block_count: int = 28
    head_count: int = 0
    """Attention heads (and KV heads below); 0 leaves them out of ``model_info``."""
    head_count_kv: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", canonical_name(self.name))
        if not self.digest:
            object.__setattr__(self, "digest", _digest_for(self.name))
        if not self.families:
            object.__setattr__(self, "families", (self.family,))

    def renamed(self, name: str) -> ModelCard:
        """A copy under another name, as ``/api/copy`` makes (same digest, new time)."""
        return replace(self, name=name, modified_at=datetime.now(UTC))

    def details(self) -> dict[str, object]:
        """The ``details`` object shared by tags, show and ps."""
        return {
            "parent_model": "",
            "format": self.format,
            "family": self.family,
            "families": list(self.families),
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }

    def model_info(self) -> dict[str, object]:
        """A plausible GGUF key/value summary for ``/api/show``'s ``model_info``."""
        arch = self.family
        info: dict[str, object] = {
            "general.architecture": arch,
            "general.file_type": 15,
            "general.parameter_count": self.parameter_count,
            "general.quantization_version": 2,
            f"{arch}.context_length": self.context_length,
            f"{arch}.embedding_length": self.embedding_length,
            f"{arch}.block_count": self.block_count,
            "tokenizer.ggml.model": "gpt2",
        }
        if self.head_count:
            info[f"{arch}.attention.head_count"] = self.head_count
            info[f"{arch}.attention.head_count_kv"] = self.head_count_kv or self.head_count
        return info


class Catalogue:
    """The mutable set of installed models (pull adds, delete removes, copy duplicates)."""

    def __init__(self, installed: Iterable[ModelCard], registry: Iterable[ModelCard]) -> None:
        self._initial = tuple(installed)
        self._registry = {card.name: card for card in registry}
        self._installed: dict[str, ModelCard] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the configured installed set (tests rely on this for isolation)."""
        self._installed = {card.name: card for card in self._initial}

    def get(self, name: str) -> ModelCard | None:
        """The installed model called ``name`` in any of its spellings."""
        return self._installed.get(canonical_name(name))

    def installed(self) -> list[ModelCard]:
        """Installed models, most recently modified first (as ``/api/tags`` lists them)."""
        return sorted(self._installed.values(), key=lambda c: c.modified_at, reverse=True)

    def remote(self, name: str) -> ModelCard | None:
        """What ``/api/pull`` would download for ``name``, or ``None`` if nothing exists."""
        key = canonical_name(name)
        return self._registry.get(key) or self._installed.get(key)

    def install(self, card: ModelCard) -> None:
        """Add a model (pull and copy use this)."""
        self._installed[card.name] = card

    def remove(self, name: str) -> bool:
        """Delete a model; ``False`` when it was not installed."""
        return self._installed.pop(canonical_name(name), None) is not None
