"""Which models the stand-in has "installed" and which it can "pull".

A model card is the metadata Ollama reports about a model (``/api/tags``, ``/api/show``,
``/api/ps``) plus the name of the engine that runs it, so one HTTP layer can serve scripted
models next to real ones. Names are compared the way Ollama compares them: the tag defaults
to ``latest``, the default registry and ``library/`` namespace are implied, case is ignored.
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
    return hashlib.sha256(f"ollama-nb-standin:{name}".encode()).hexdigest()


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
    engine: str = "scripted"
    format: str = "gguf"
    families: tuple[str, ...] = ()
    template: str = "{{ .Prompt }}"
    parameters: str = ""
    modified_at: datetime = _FIXED_TIME
    digest: str = field(default="")
    engine_source: str = ""
    """Engine-specific locator (e.g. a GGUF path for a llama.cpp engine); unused by scripts."""

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


_LLAMA_TEMPLATE = (
    "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>"
    "{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}"
    "<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}"
)
_QWEN_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n{{ if .Think }}<think>\n{{ end }}"
)
_GEMMA_TEMPLATE = (
    "{{- range .Messages }}<start_of_turn>{{ .Role }}\n{{ .Content }}<end_of_turn>\n{{ end }}"
    "<start_of_turn>model\n"
)

DEFAULT_INSTALLED: tuple[ModelCard, ...] = (
    ModelCard(
        name="llama3.2:latest",
        family="llama",
        parameter_size="3.2B",
        parameter_count=3_212_749_888,
        quantization_level="Q4_K_M",
        capabilities=frozenset({COMPLETION, TOOLS}),
        context_length=131_072,
        embedding_length=3072,
        size_bytes=2_019_393_189,
        template=_LLAMA_TEMPLATE,
        parameters='stop                           "<|start_header_id|>"\n'
        'stop                           "<|end_header_id|>"\n'
        'stop                           "<|eot_id|>"',
    ),
    ModelCard(
        name="qwen3:0.6b",
        family="qwen3",
        parameter_size="751.63M",
        parameter_count=751_632_384,
        quantization_level="Q4_K_M",
        capabilities=frozenset({COMPLETION, TOOLS, THINKING}),
        context_length=40_960,
        embedding_length=1024,
        size_bytes=522_653_767,
        template=_QWEN_TEMPLATE,
        parameters="repeat_penalty                 1\ntemperature                    0.6\n"
        "top_k                          20\ntop_p                          0.95",
    ),
    ModelCard(
        name="gemma3:4b",
        family="gemma3",
        parameter_size="4.3B",
        parameter_count=4_299_915_632,
        quantization_level="Q4_K_M",
        capabilities=frozenset({COMPLETION, VISION}),
        context_length=131_072,
        embedding_length=2560,
        size_bytes=3_338_801_804,
        template=_GEMMA_TEMPLATE,
        parameters='stop                           "<end_of_turn>"\ntemperature                    1\n'
        "top_k                          64\ntop_p                          0.95",
    ),
    ModelCard(
        name="nomic-embed-text:latest",
        family="nomic-bert",
        parameter_size="137M",
        parameter_count=136_727_040,
        quantization_level="F16",
        capabilities=frozenset({EMBEDDING}),
        context_length=2048,
        embedding_length=768,
        size_bytes=274_302_450,
        template="",
        parameters="num_ctx                        8192",
    ),
)

DEFAULT_REGISTRY: tuple[ModelCard, ...] = (
    *DEFAULT_INSTALLED,
    ModelCard(
        name="moondream:latest",
        family="phi2",
        families=("phi2", "clip"),
        parameter_size="1B",
        parameter_count=1_420_000_000,
        quantization_level="Q4_0",
        capabilities=frozenset({COMPLETION, VISION}),
        context_length=2048,
        embedding_length=2048,
        size_bytes=1_738_451_197,
    ),
    ModelCard(
        name="phi4-mini:latest",
        family="phi3",
        parameter_size="3.8B",
        parameter_count=3_836_021_856,
        quantization_level="Q4_K_M",
        capabilities=frozenset({COMPLETION, TOOLS}),
        context_length=131_072,
        embedding_length=3072,
        size_bytes=2_491_876_774,
    ),
    ModelCard(
        name="all-minilm:latest",
        family="bert",
        parameter_size="23M",
        parameter_count=22_565_760,
        quantization_level="F16",
        capabilities=frozenset({EMBEDDING}),
        context_length=512,
        embedding_length=384,
        size_bytes=45_960_996,
        template="",
    ),
)


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
