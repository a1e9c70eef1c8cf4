"""Images for vision models: the one surface magics, widgets, batches and the API call.

``prepare_images`` turns whatever a notebook holds (a PIL image, a path, bytes,
base64 or a ``data:`` URL, a NumPy array, a matplotlib figure, an
``IPython.display.Image``) into small JPEG/PNG/WebP bytes, through the
runtime's Pillow pipeline and its SHA-256 keyed cache, so an image used in
many cells or batch rows is processed once. ``thumbnails_html`` shows exactly
what was sent. Pillow is imported on first use, not when this module loads, so
``is_image_source`` stays cheap for the magics that call it on every ``{name}``.
"""

from __future__ import annotations

import base64
import html
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .domain.images import PreparedImage, VisionSettings, human_bytes
from .runtime import Runtime, get_runtime

if TYPE_CHECKING:
    from .infrastructure.image_cache import ImageCacheStats

__all__ = [
    "VisionSettings",
    "cache_stats",
    "caption",
    "clear_cache",
    "is_image_source",
    "prepare_images",
    "thumbnails_html",
    "vision_settings",
]

#: Suffixes that make a path string worth treating as an image reference.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".mpo"}
)

#: Leading bytes of the formats the pipeline decodes.
_MAGIC = (
    b"\xff\xd8\xff",  # JPEG / MPO
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF, little endian
    b"MM\x00*",  # TIFF, big endian
)


# --- the public surface ---------------------------------------------------------------------


def prepare_images(
    sources: Sequence[object] | object, *, runtime: Runtime | None = None, model: str | None = None
) -> list[PreparedImage]:
    """Validate, shrink and encode each source; cached by content and settings.

    A single source (a path string, bytes, an array…) is accepted as well as a
    list. ``model`` picks a per-model size from ``image_model_max_side``. Several
    images are processed on a few threads: Pillow releases the GIL while it
    decodes, resizes and encodes. Raises ``ImageError`` naming the bad source.
    How images are shrunk is set like every other setting:
    ``ollama_nb.configure(image_max_side=768)`` or ``%ollama config image_max_side=768``.
    """
    items: list[object] = list(sources) if isinstance(sources, list | tuple) else [sources]
    return (runtime or get_runtime()).images.prepare(items, model=model)


def vision_settings(*, runtime: Runtime | None = None) -> VisionSettings:
    """The settings images are processed with right now."""
    return (runtime or get_runtime()).images.settings


def is_image_source(obj: object) -> bool:
    """Whether ``obj`` looks like an image we can send, without decoding it.

    Used to decide whether ``{name}`` in a prompt means "attach this image" or
    "insert this text". Reads at most a file's first bytes; plain text strings,
    data tables and 2-D float arrays (more likely data than a picture) are not
    images.
    """
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj[:16]).startswith(_MAGIC) or _is_webp(bytes(obj[:16]))
    if isinstance(obj, Path):
        return _file_looks_like_image(obj)
    if isinstance(obj, str):
        return _str_is_image(obj)
    pil = sys.modules.get("PIL.Image")
    if pil is not None and isinstance(obj, pil.Image):
        return True
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(obj, numpy.ndarray):
        return _array_is_image(obj)
    display = sys.modules.get("IPython.core.display")
    if display is not None and isinstance(obj, display.Image):
        return True
    return _is_matplotlib_figure(obj)


def thumbnails_html(images: Sequence[PreparedImage]) -> str:
    """Small inline thumbnails of the images as sent, each captioned with its sizes.

    The caption reads "1.2 MB → 85 kB, 1024x768 JPEG" (with a multiplication sign): what the source weighed,
    what went over the wire, and the pixels the model sees.
    """
    if not images:
        return ""
    cells = [_thumbnail_cell(image) for image in images]
    return (
        '<div class="ollama-nb-images" style="display:flex;flex-wrap:wrap;gap:8px;'
        'margin:4px 0">' + "".join(cells) + "</div>"
    )


def cache_stats(*, runtime: Runtime | None = None) -> ImageCacheStats:
    """Hits, misses, evictions, entries and bytes of the runtime's image cache."""
    return (runtime or get_runtime()).images.stats()


def clear_cache(*, runtime: Runtime | None = None) -> None:
    """Drop every cached image (statistics are kept)."""
    (runtime or get_runtime()).images.cache.clear()


# --- helpers --------------------------------------------------------------------------------


def caption(image: PreparedImage) -> str:
    """``1.2 MB → 85 kB, 1024x768 JPEG`` (plus the cache and any note)."""
    text = (
        f"{human_bytes(image.original_bytes)} → {human_bytes(len(image.data))}, "
        f"{image.width}\u00d7{image.height} {image.format}"
    )
    if image.cached:
        text += ", cached"
    return text


def _thumbnail_cell(image: PreparedImage) -> str:
    from PIL import Image

    with Image.open(io.BytesIO(image.data)) as opened:
        opened.draft("RGB", (320, 320))
        thumb = opened.convert("RGB") if opened.mode not in ("RGB", "L") else opened.copy()
    thumb.thumbnail((160, 160), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=80)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    title = html.escape(image.source or "image")
    note = (
        f'<div class="ollama-nb-image-note">{html.escape(image.note)}</div>' if image.note else ""
    )
    return (
        f'<figure style="margin:0;text-align:center;font-size:11px" title="{title}">'
        f'<img src="data:image/jpeg;base64,{encoded}" alt="{title}" '
        f'style="max-width:160px;max-height:160px;border:1px solid #ccc"/>'
        f'<figcaption><span class="ollama-nb-image-size">{html.escape(caption(image))}</span>'
        f"{note}</figcaption></figure>"
    )


def _is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def _file_looks_like_image(path: Path) -> bool:
    try:
        if not path.is_file():
            return False
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return head.startswith(_MAGIC) or _is_webp(head)


def _str_is_image(text: str) -> bool:
    stripped = text.strip()
    if stripped.startswith("data:image/"):
        return True
    if stripped.startswith(("http://", "https://")):
        path_part = stripped.split("?", 1)[0].lower()
        return any(path_part.endswith(suffix) for suffix in IMAGE_SUFFIXES)
    if len(stripped) < 1024 and "\n" not in stripped:
        candidate = Path(stripped).expanduser()
        if candidate.suffix.lower() in IMAGE_SUFFIXES and _file_looks_like_image(candidate):
            return True
    if len(stripped) >= 64:
        try:
            head = base64.b64decode(stripped[:24], validate=True)
        except ValueError:
            return False
        return head.startswith(_MAGIC) or _is_webp(head)
    return False


def _array_is_image(array: Any) -> bool:
    shape = tuple(array.shape)
    kind = array.dtype.kind
    if len(shape) == 2:
        return kind in "ub" and min(shape) >= 2  # 2-D floats are usually data, not pictures
    if len(shape) == 3:
        return shape[2] in (1, 3, 4) and kind in "uif" and min(shape[:2]) >= 2
    return False


def _is_matplotlib_figure(obj: object) -> bool:
    module = type(obj).__module__
    return module.startswith("matplotlib.figure") and callable(getattr(obj, "savefig", None))
