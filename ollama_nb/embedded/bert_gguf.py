"""A sentence-transformers BERT checkpoint (config, vocab, safetensors) as a GGUF file.

No embedding model ships on the package index as GGUF, but all-MiniLM-L6-v2 ships there
as the files Hugging Face's ``transformers`` reads. llama.cpp runs BERT encoders, so the
checkpoint is converted once, at first use, with ggml's own ``gguf`` writer: the same
metadata and tensor names llama.cpp's converter writes (BERT architecture, mean pooling
from the sentence-transformers pooling config, the WordPiece vocabulary in llama.cpp's
"phantom space" spelling), 2-D weights as f16 and the rest as f32.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .wheels import ModelFetchError, Opener

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64}
_SKIP = ("embeddings.position_ids", "pooler.")
"""Tensors llama.cpp's BERT graph does not use."""
_KEEP_F32 = ("position_embd", "token_types")
"""Added to activations as they are, so kept in f32 as llama.cpp's converter keeps them."""
MAX_HEADER = 16 * 1024 * 1024


def _load_json(open_member: Opener, member: str) -> Mapping[str, Any]:
    with open_member(member) as f:
        value = json.load(f)
    if not isinstance(value, dict):
        raise ModelFetchError(f"{member} is not a JSON object.")
    return value


def safetensors(data: bytes) -> Iterator[tuple[str, np.ndarray[Any, Any]]]:
    """The tensors of a ``.safetensors`` file held in memory (views, no copies)."""
    if len(data) < 8:
        raise ModelFetchError("The safetensors file is truncated.")
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(MAX_HEADER, len(data) - 8):
        raise ModelFetchError("The safetensors header is larger than the file.")
    header = json.loads(data[8 : 8 + size])
    body = memoryview(data)[8 + size :]
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(entry["dtype"])
        begin, end = entry["data_offsets"]
        if dtype is None or not 0 <= begin <= end <= len(body):
            raise ModelFetchError(f"Tensor {name} has an unsupported type or range.")
        try:
            array = np.frombuffer(body[begin:end], dtype=dtype).reshape(entry["shape"])
        except ValueError:
            raise ModelFetchError(f"Tensor {name} does not have the shape it declares.") from None
        yield name, array


def _phantom(token: str) -> str:
    """llama.cpp's WordPiece spelling: word starts get U+2581, ``##`` pieces lose it."""
    if token.startswith("[") and token.endswith("]"):
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def convert(open_member: Opener, partial: Path, *, name: str) -> None:
    """Write the GGUF for the checkpoint under ``model/`` of a sentence-transformers package."""
    import gguf

    config = _load_json(open_member, "model/config.json")
    pooling = _load_json(open_member, "model/1_Pooling/config.json")
    if config.get("model_type") != "bert" or not pooling.get("pooling_mode_mean_tokens"):
        raise ModelFetchError("Only BERT checkpoints with mean pooling are converted.")
    with open_member("model/vocab.txt") as f:
        vocab = f.read().decode("utf-8").splitlines()
    special = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    blocks = int(config["num_hidden_layers"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, blocks)

    writer = gguf.GGUFWriter(partial, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_name(name)
    writer.add_license("apache-2.0")
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(blocks)
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([_phantom(t) for t in vocab])
    writer.add_token_types(
        [gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in vocab]
    )
    writer.add_token_type_count(int(config.get("type_vocab_size", 2)))
    for token, add in (
        ("[CLS]", writer.add_bos_token_id), ("[SEP]", writer.add_sep_token_id),
        ("[UNK]", writer.add_unk_token_id), ("[PAD]", writer.add_pad_token_id),
        ("[MASK]", writer.add_mask_token_id),
    ):  # fmt: skip
        add(vocab.index(token))
    writer.add_add_bos_token(True)
    writer.add_add_sep_token(True)

    with open_member("model/model.safetensors") as f:
        data = f.read()
    for key, array in safetensors(data):
        if key.startswith(_SKIP):
            continue
        target = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise ModelFetchError(f"Tensor {key} has no place in a llama.cpp BERT model.")
        half = array.ndim == 2 and not target.startswith(_KEEP_F32)
        writer.add_tensor(target, array.astype(np.float16 if half else np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
