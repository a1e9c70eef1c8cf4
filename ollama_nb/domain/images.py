"""An image made ready for a vision model, and the settings that shape it."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias

from .errors import ConfigurationError

ImageFormat: TypeAlias = Literal["auto", "JPEG", "PNG", "WEBP"]

_FORMATS: tuple[str, ...] = ("auto", "JPEG", "PNG", "WEBP")


def human_bytes(count: int) -> str:
    """Decimal units, as file browsers show them: 850 B, 8.5 kB, 85 kB, 1.2 MB."""
    if count < 1000:
        return f"{count} B"
    if count < 1_000_000:
        return f"{count / 1000:.0f} kB" if count >= 10_000 else f"{count / 1000:.1f} kB"
    if count < 1_000_000_000:
        return f"{count / 1_000_000:.1f} MB"
    return f"{count / 1_000_000_000:.1f} GB"


@dataclass(frozen=True, slots=True, repr=False)
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
    cached: bool = False  # served from the cache instead of processed again

    @property
    def bytes_saved(self) -> int:
        return max(0, self.original_bytes - len(self.data))

    def to_base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def __repr__(self) -> str:
        # The default repr would print every byte of ``data`` into the notebook.
        cached = ", cached" if self.cached else ""
        return (
            f"PreparedImage({self.source or 'image'}: {self.width}\u00d7{self.height} {self.format}, "
            f"{human_bytes(self.original_bytes)} → {human_bytes(len(self.data))}{cached})"
        )


@dataclass(frozen=True, slots=True)
class ImageSettings:
    """How images are shrunk and encoded before they are sent.

    ``max_side`` bounds the longest side in pixels: current vision encoders
    work on tiles of 336 to 896 pixels, so more than about a thousand pixels
    costs upload and prompt time without helping the model. ``format="auto"``
    sends JPEG for photos and PNG for charts, diagrams and screenshots, whose
    sharp edges JPEG smears.
    """

    max_side: int = 1024
    format: ImageFormat = "auto"
    quality: int = 85  # JPEG/WebP quality
    max_pixels: int = 89_478_485  # decoded pixels allowed (Pillow's own bomb threshold)
    max_bytes: int = 64 * 1024 * 1024  # encoded size allowed for one source
    allow_remote: bool = False  # fetch http(s) URLs
    remote_timeout_s: float = 10.0
    remote_max_bytes: int = 20 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.format not in _FORMATS:
            raise ConfigurationError(
                f"Image format {self.format!r} is not supported.",
                hint=f"Use one of: {', '.join(_FORMATS)}.",
            )
        if not 16 <= self.max_side <= 16384:
            raise ConfigurationError(
                f"Image max side {self.max_side} is out of range.", hint="Use 16 to 16384 pixels."
            )
        if not 1 <= self.quality <= 100:
            raise ConfigurationError(f"Image quality {self.quality} is out of range (1 to 100).")
        if self.max_pixels < 1 or self.max_bytes < 1 or self.remote_max_bytes < 1:
            raise ConfigurationError("Image size limits must be positive.")
        if self.remote_timeout_s <= 0:
            raise ConfigurationError("The image download timeout must be positive.")

    @property
    def fingerprint(self) -> str:
        """The settings that change the output bytes; part of every cache key."""
        return f"side={self.max_side};fmt={self.format};q={self.quality}"


@dataclass(frozen=True, slots=True)
class VisionSettings:
    """Everything the image pipeline is built from (``Settings.vision`` makes one).

    ``model_max_side`` overrides ``image.max_side`` for models whose name starts
    with a key (``("moondream", 756)``), for models whose vision encoder wants
    another size.
    """

    image: ImageSettings = field(default_factory=ImageSettings)
    cache_max_bytes: int = 1024**3
    cache_ttl_s: float = 3600.0
    model_max_side: tuple[tuple[str, int], ...] = ()

    def for_model(self, model: str | None) -> ImageSettings:
        """The image settings to use for ``model`` (its override, else the default)."""
        if model:
            name = model.lower()
            for prefix, side in self.model_max_side:
                if name.startswith(prefix.lower()):
                    return replace(self.image, max_side=side)
        return self.image
