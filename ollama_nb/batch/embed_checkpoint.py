"""Vectors in a batch checkpoint: the row key of one text, and the vector as a stored reply.

An embed run keeps its finished vectors in the same sealed checkpoint rows as a
chat run (``checkpoint.py``), so they share one trust rule: the HMAC covers the
key, the model's digest and the stored text. A vector travels as base64 of its
little-endian float32 bytes in the reply's ``text``: a quarter of JSON's size
for a 768-wide vector, and exact. Reading it back is still bounded and checked
(length, width, finite numbers), because a row is a file we did not just write.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from .checkpoint import StoredReply, row_key

if TYPE_CHECKING:
    import numpy as np

#: The widest vector a checkpoint row may hold; real embedders stop well below (4096).
MAX_DIMENSIONS = 65_536
_MAX_TEXT = 4 * ((MAX_DIMENSIONS * 4 + 2) // 3)  # base64 of MAX_DIMENSIONS float32s


def embed_key(model: str, text: str, *, dimensions: int | None, truncate: bool) -> str:
    """A hash of everything that decides one text's vector but the model build.

    The build (its digest) is in each row's seal, as for chat rows: a row made by
    another build does not verify, is counted and is re-run.
    """
    return row_key(
        kind="embed",
        model=model,
        options={"dimensions": dimensions, "truncate": truncate},
        format=None,
        system=None,
        prompt=text,
        image_digests=(),
    )


def vector_reply(vector: np.ndarray[Any, Any], model: str) -> StoredReply:
    """The vector as a checkpoint row's reply (float32, little-endian, base64)."""
    import numpy as np

    data = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    return StoredReply(
        text=base64.b64encode(data).decode("ascii"),
        model=model,
        done_reason=None,
        prompt_tokens=None,
        eval_tokens=None,
        latency_s=None,
        ttft_s=None,
        tokens_per_s=None,
    )


def vector_from(reply: StoredReply, dimensions: int | None) -> np.ndarray[Any, Any] | None:
    """The stored vector, or None when the row does not hold a usable one."""
    import numpy as np

    text = reply.text
    if not text or len(text) > _MAX_TEXT:
        return None
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    if not data or len(data) % 4 or len(data) // 4 > MAX_DIMENSIONS:
        return None
    vector = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if dimensions is not None and len(vector) != dimensions:
        return None
    if not np.isfinite(vector).all():
        return None
    return vector
