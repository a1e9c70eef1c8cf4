"""Reading a GGUF file's header: is it one, and what does it say about the model?

Validation happens here, in pure Python, before llama.cpp ever sees the file: a wrong
path or a file that is not GGUF must be a one-line error, not a crash inside a C library.
The metadata (architecture, context length, layer and head counts, chat template) feeds the
model card and the memory estimate made before loading.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..domain import ConfigurationError

MAGIC = b"GGUF"

# GGUF value types (ggml's gguf.h): scalar ones map to struct codes.
_SCALARS: dict[int, str] = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
    12: "<d",
}  # fmt: skip
_STRING = 8
_ARRAY = 9


class GgufError(ConfigurationError):
    """A configured model file is missing, unreadable or not a GGUF file."""


@dataclass(frozen=True, slots=True)
class GgufInfo:
    """What the header of one GGUF file says, with the few numbers we need named."""

    path: Path
    version: int
    size_bytes: int
    metadata: Mapping[str, object]
    parameter_count: int = 0
    """Summed from the tensor table (``general.parameter_count`` is often absent)."""

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    def arch_int(self, key: str, default: int = 0) -> int:
        """An integer under ``<architecture>.<key>`` (per-layer arrays give their maximum)."""
        value = self.metadata.get(f"{self.architecture}.{key}", default)
        if isinstance(value, list):
            value = max((v for v in value if isinstance(v, int)), default=default)
        return int(value) if isinstance(value, int | float) else default

    @property
    def context_length(self) -> int:
        return self.arch_int("context_length", 2048)

    @property
    def embedding_length(self) -> int:
        return self.arch_int("embedding_length")

    @property
    def block_count(self) -> int:
        return self.arch_int("block_count")

    @property
    def is_embedding_model(self) -> bool:
        """Encoder models declare a pooling type; causal LMs do not."""
        return f"{self.architecture}.pooling_type" in self.metadata

    @property
    def chat_template(self) -> str:
        value = self.metadata.get("tokenizer.chat_template", "")
        return value if isinstance(value, str) else ""

    def kv_cache_bytes(self, num_ctx: int) -> int:
        """f16 K and V for every layer: ``2 x layers x ctx x kv_heads x head_dim x 2 bytes``."""
        heads = self.arch_int("attention.head_count", 1) or 1
        kv_heads = self.arch_int("attention.head_count_kv", heads) or heads
        key_dim = self.arch_int("attention.key_length", 0) or self.embedding_length // heads
        value_dim = self.arch_int("attention.value_length", 0) or key_dim
        per_token = self.block_count * kv_heads * (key_dim + value_dim) * 2
        return per_token * num_ctx


def _read(f: BinaryIO, fmt: str) -> object:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack(fmt, data)[0]


def _read_string(f: BinaryIO) -> str:
    length = _read(f, "<Q")
    assert isinstance(length, int)
    data = f.read(length)
    if len(data) != length:
        raise EOFError
    return data.decode("utf-8", "replace")


def _read_value(f: BinaryIO, kind: int, *, keep_arrays: bool) -> object:
    if kind in _SCALARS:
        return _read(f, _SCALARS[kind])
    if kind == _STRING:
        return _read_string(f)
    if kind == _ARRAY:
        item_kind = _read(f, "<I")
        count = _read(f, "<Q")
        assert isinstance(item_kind, int) and isinstance(count, int)
        if item_kind in _SCALARS and not keep_arrays:
            f.seek(struct.calcsize(_SCALARS[item_kind]) * count, 1)  # e.g. token scores
            return count
        items = [_read_value(f, item_kind, keep_arrays=keep_arrays) for _ in range(count)]
        return items if keep_arrays else count
    raise ValueError(f"unknown GGUF value type {kind}")


def _count_parameters(f: BinaryIO, tensor_count: int) -> int:
    """Elements over every tensor: name, dims, type and offset per entry of the table."""
    total = 0
    for _ in range(tensor_count):
        _read_string(f)
        n_dims = _read(f, "<I")
        assert isinstance(n_dims, int)
        elements = 1
        for _ in range(n_dims):
            dim = _read(f, "<Q")
            assert isinstance(dim, int)
            elements *= dim
        f.seek(4 + 8, 1)  # type, offset
        total += elements
    return total


def read_gguf(path: Path | str) -> GgufInfo:
    """Validate ``path`` as a GGUF file and read its metadata (large arrays as lengths)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise GgufError(
            f"Model file {p} does not exist.",
            hint="Check the path in OLLAMA_NB_EMBEDDED_MODELS (or the models folder).",
        )
    if not p.is_file():
        raise GgufError(f"Model path {p} is not a file.", hint="Point it at a .gguf file.")
    try:
        with p.open("rb") as f:
            magic = f.read(4)
            if magic != MAGIC:
                raise GgufError(
                    f"{p} is not a GGUF file (it starts with {magic!r}, not b'GGUF').",
                    hint="Use a llama.cpp GGUF model, e.g. one downloaded from Hugging Face.",
                )
            version = _read(f, "<I")
            tensor_count = _read(f, "<Q")
            kv_count = _read(f, "<Q")
            assert isinstance(version, int) and isinstance(kv_count, int)
            assert isinstance(tensor_count, int)
            metadata: dict[str, object] = {}
            for _ in range(kv_count):
                key = _read_string(f)
                kind = _read(f, "<I")
                assert isinstance(kind, int)
                keep = not key.startswith("tokenizer.ggml.")  # vocabularies: lengths only
                metadata[key] = _read_value(f, kind, keep_arrays=keep)
            parameters = _count_parameters(f, tensor_count)
    except GgufError:
        raise
    except (EOFError, ValueError, struct.error) as exc:
        raise GgufError(
            f"{p} is not a complete GGUF file ({exc or 'it ends inside its header'}).",
            hint="The download may be truncated: fetch the file again.",
        ) from None
    except OSError as exc:
        raise GgufError(f"Cannot read {p}: {exc.strerror or exc}.") from None
    return GgufInfo(
        path=p, version=version, size_bytes=p.stat().st_size, metadata=metadata,
        parameter_count=parameters,
    )  # fmt: skip


def read_metadata(f: BinaryIO) -> dict[str, object]:
    """The key/value header of a GGUF stream (vocabularies as lengths), no tensor table.

    For a header fetched with a ranged download (``%ollama fit`` before a pull):
    raises ``EOFError`` when the bytes end inside the header and ``ValueError`` when
    they are not GGUF.
    """
    if f.read(4) != MAGIC:
        raise ValueError("not a GGUF file")
    _read(f, "<I")  # version
    _read(f, "<Q")  # tensor count
    kv_count = _read(f, "<Q")
    assert isinstance(kv_count, int)
    metadata: dict[str, object] = {}
    for _ in range(kv_count):
        key = _read_string(f)
        kind = _read(f, "<I")
        assert isinstance(kind, int)
        metadata[key] = _read_value(f, kind, keep_arrays=not key.startswith("tokenizer.ggml."))
    return metadata
