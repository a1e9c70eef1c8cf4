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
_VOCABULARY_ARRAYS = frozenset(
    {"tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
     "tokenizer.ggml.scores"}
)  # fmt: skip
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


_MISSING = "!missing!"
_PART_LIMITS = (350, 80, 80, 80)  # host, namespace, model, tag


def _cut_last(s: str, sep: str) -> tuple[str, str, bool]:
    """``s`` split at its last ``sep``; an empty side becomes a part that cannot be valid."""
    before, found, after = s.rpartition(sep)
    if not found:
        return s, "", False
    return before or _MISSING, after or _MISSING, True


def _valid_part(index: int, part: str) -> bool:
    if not 1 <= len(part) <= _PART_LIMITS[index]:
        return False
    if not (part[0].isascii() and (part[0].isalnum() or part[0] == "_")):
        return False
    for ch in part[1:]:
        if ch in "_-" or (ch.isascii() and ch.isalnum()):
            continue
        if ch == "." and index != 1:  # no dots in a namespace
            continue
        if ch == ":" and index == 0:  # a host may carry a port
            continue
        return False
    return True


def valid_name(name: str) -> bool:
    """Ollama's ``model.ParseName(name).IsValid()``: host/namespace/model:tag, each part
    1-80 characters (a host 350) of letters, digits, ``_``, ``-`` and ``.``, starting with
    a letter, digit or ``_``; missing parts take the defaults."""
    s = name
    tag = "latest"
    if s.rfind(":") > s.rfind("/"):
        s, tag, _ = _cut_last(s, ":")
    s, model, cut = _cut_last(s, "/")
    namespace, host = "library", "registry.ollama.ai"
    if not cut:
        model = s
    else:
        s, namespace, cut = _cut_last(s, "/")
        if not cut:
            namespace = s
        else:
            host = s.partition("://")[2] if "://" in s else s
    parts = (host, namespace, model, tag)
    return all(_valid_part(i, part) for i, part in enumerate(parts))


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
    gguf_metadata: tuple[tuple[str, object], ...] = ()
    """The model file's own key/value header, when the engine reads one."""

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
        """``/api/show``'s ``model_info``: the GGUF header as the file states it.

        Vocabulary arrays are ``null``, as Ollama shows them unless asked to be verbose.
        A card without a file (a scripted model) reports a summary of its own fields.
        """
        if self.gguf_metadata:
            return {
                key: None if key in _VOCABULARY_ARRAYS else value
                for key, value in self.gguf_metadata
            }
        arch = self.family
        return {
            "general.architecture": arch,
            "general.file_type": 15,
            "general.parameter_count": self.parameter_count,
            "general.quantization_version": 2,
            f"{arch}.context_length": self.context_length,
            f"{arch}.embedding_length": self.embedding_length,
            f"{arch}.block_count": 28,
            "tokenizer.ggml.model": "gpt2",
        }


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

    def pullable(self) -> list[ModelCard]:
        """What ``/api/pull`` can fetch, by name (for the message of a failed pull)."""
        return sorted(self._registry.values(), key=lambda c: c.name)

    def install(self, card: ModelCard) -> None:
        """Add a model (pull and copy use this)."""
        self._installed[card.name] = card

    def remove(self, name: str) -> bool:
        """Delete a model; ``False`` when it was not installed."""
        return self._installed.pop(canonical_name(name), None) is not None
