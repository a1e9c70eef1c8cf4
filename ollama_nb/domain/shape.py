"""A model's shape: what decides the memory it takes once loaded.

Read from GGUF keys, which ``/api/show`` reports as ``model_info`` for an
installed model and the file's header carries for one still in the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelShape:
    """What decides a model's memory: its weights and the size of one token of KV cache."""

    name: str
    weights_bytes: int
    kv_bytes_per_token: int | None  # f16, one slot; None when the header did not say
    trained_context: int | None
    source: str  # where the figures came from, shown under the table

    @classmethod
    def from_metadata(
        cls, name: str, weights_bytes: int, metadata: Mapping[str, object], source: str
    ) -> ModelShape:
        """From GGUF keys (``/api/show``'s ``model_info`` or the file's header)."""
        arch = metadata.get("general.architecture")
        context = _int(metadata, f"{arch}.context_length") if isinstance(arch, str) else None
        return cls(name, weights_bytes, kv_bytes_per_token(metadata), context or None, source)


def kv_bytes_per_token(metadata: Mapping[str, object]) -> int | None:
    """f16 K and V for every layer for one token of one slot, from GGUF keys."""
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        return None
    blocks = _int(metadata, f"{arch}.block_count")
    heads = _int(metadata, f"{arch}.attention.head_count")
    embedding = _int(metadata, f"{arch}.embedding_length")
    if not blocks or not heads:
        return None
    kv_heads = _int(metadata, f"{arch}.attention.head_count_kv") or heads
    key = _int(metadata, f"{arch}.attention.key_length") or (embedding or 0) // heads
    value = _int(metadata, f"{arch}.attention.value_length") or key
    if not key:
        return None
    return blocks * kv_heads * (key + value) * 2


def _int(metadata: Mapping[str, object], key: str) -> int | None:
    """An integer key; per-layer arrays (some models vary heads by layer) give their maximum."""
    value = metadata.get(key)
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
        value = max(numbers) if numbers else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)
