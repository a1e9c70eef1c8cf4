"""An image made ready for a vision model."""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """The bytes we send plus what it cost to make them, for display and metrics."""

    data: bytes
    format: str  # "JPEG", "PNG", "WEBP"
    width: int
    height: int
    original_bytes: int
    sha256: str  # of the original bytes plus the processing settings: the cache key
    elapsed_s: float = 0.0
    source: str = ""  # a short description of where it came from, for messages
    note: str | None = None  # e.g. "first frame of an animated GIF"

    @property
    def bytes_saved(self) -> int:
        return max(0, self.original_bytes - len(self.data))

    def to_base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")
