"""Decode request images the way Ollama receives them: plain base64, nothing else.

Ollama's JSON decoder turns ``images`` into bytes with Go's strict base64, so a
``data:image/png;base64,`` prefix fails with "illegal base64 data at input byte 4". The
stand-in reproduces that, then sniffs each image with Pillow so scripted replies and the
request log can report format and size without keeping megabytes of base64 around.
"""

from __future__ import annotations

import binascii
import io
import re

from PIL import Image, UnidentifiedImageError

from .engine import ImageInfo

_ALPHABET = re.compile(r"[^A-Za-z0-9+/=]")


class ImageDecodeError(ValueError):
    """The request carried an image Ollama would refuse (the HTTP layer answers 400)."""


def decode_image(value: object) -> ImageInfo:
    """Turn one ``images`` entry into an :class:`ImageInfo` or raise :class:`ImageDecodeError`."""
    if not isinstance(value, str):
        raise ImageDecodeError("json: cannot unmarshal images: expected a base64 string")
    text = value.replace("\r", "").replace("\n", "")
    bad = _ALPHABET.search(text)
    if bad is not None:
        raise ImageDecodeError(f"illegal base64 data at input byte {bad.start()}")
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise ImageDecodeError(f"illegal base64 data at input byte {len(text)}") from exc
    try:
        with Image.open(io.BytesIO(data)) as img:
            return ImageInfo(format=str(img.format), width=img.width, height=img.height, data=data)
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageDecodeError("failed to process inputs: image: unknown format") from exc
