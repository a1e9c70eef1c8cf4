"""Images for vision models: the one surface magics, widgets, batches and the API call.

``prepare_images`` turns whatever a notebook holds (a PIL image, a path, bytes,
base64 or a ``data:`` URL, a NumPy array, a matplotlib figure, an
``IPython.display.Image``) into small JPEG/PNG/WebP bytes, through one
process-wide Pillow pipeline and its SHA-256 keyed cache, so an image used in
many cells or batch rows is processed once. ``thumbnails_html`` shows exactly
what was sent. Pillow is imported on first use, not when this module loads, so
``is_image_source`` stays cheap for the magics that call it on every ``{name}``.
"""

from __future__ import annotations

import base64
import html
import io
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .domain.images import ImageSettings, PreparedImage, human_bytes

if TYPE_CHECKING:
    from .infrastructure.image_cache import ImageCacheStats, LruImageCache
    from .infrastructure.image_processor import PillowImageProcessor
    from .runtime import Runtime

__all__ = [
    "VisionSettings",
    "cache_stats",
    "caption",
    "clear_cache",
    "configure_vision",
    "is_image_source",
    "prepare_images",
    "reset_vision",
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


@dataclass(frozen=True, slots=True)
class VisionSettings:
    """Everything the vision pipeline is built from.

    ``model_max_side`` overrides ``image.max_side`` for models whose name starts
    with a key (``{"moondream": 756}``), for tuning profiles that know a model's
    vision encoder.
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


# --- the process-wide pipeline --------------------------------------------------------------

_lock = threading.Lock()
_overrides: dict[str, Any] = {}
_built: tuple[VisionSettings, PillowImageProcessor, LruImageCache] | None = None

#: Settings fields read from ``Runtime.settings`` when the lead wires them in.
_RUNTIME_FIELDS: Mapping[str, str] = {
    "image_max_side": "max_side",
    "image_format": "format",
    "image_quality": "quality",
    "image_max_pixels": "max_pixels",
    "image_max_bytes": "max_bytes",
    "image_fetch_remote": "allow_remote",
    "image_fetch_timeout_s": "remote_timeout_s",
    "image_fetch_max_bytes": "remote_max_bytes",
}


def _settings_from(runtime: Runtime | None) -> VisionSettings:
    image_values: dict[str, Any] = {}
    cache_values: dict[str, Any] = {}
    if runtime is not None:
        configured = runtime.settings
        for name, target in _RUNTIME_FIELDS.items():
            value = getattr(configured, name, None)
            if value is not None:
                image_values[target] = value.upper() if target == "format" else value
        for name, target in (
            ("image_cache_bytes", "cache_max_bytes"),
            ("image_cache_ttl_s", "cache_ttl_s"),
        ):
            value = getattr(configured, name, None)
            if value is not None:
                cache_values[target] = value
    image_names = {f.name for f in fields(ImageSettings)}
    for key, value in _overrides.items():
        (image_values if key in image_names else cache_values)[key] = value
    if "format" in image_values and isinstance(image_values["format"], str):
        image_values["format"] = _format_name(image_values["format"])
    model_max_side = cache_values.pop("model_max_side", ())
    if isinstance(model_max_side, Mapping):
        model_max_side = tuple(model_max_side.items())
    return VisionSettings(
        image=ImageSettings(**image_values), model_max_side=tuple(model_max_side), **cache_values
    )


def _format_name(value: str) -> str:
    return "auto" if value.lower() == "auto" else value.upper().replace("JPG", "JPEG")


def _pipeline(
    runtime: Runtime | None,
) -> tuple[VisionSettings, PillowImageProcessor, LruImageCache]:
    """The processor and cache for the current settings, rebuilt only when they change.

    The cache survives a change of processing settings (its keys include them)
    and is only resized when its own bounds change.
    """
    global _built
    from .infrastructure.image_cache import LruImageCache
    from .infrastructure.image_processor import PillowImageProcessor

    if runtime is None:
        from .runtime import get_runtime

        runtime = get_runtime()
    settings = _settings_from(runtime)
    with _lock:
        if _built is not None and _built[0] == settings:
            return _built
        if _built is None:
            cache = LruImageCache(
                max_bytes=settings.cache_max_bytes, ttl_s=settings.cache_ttl_s, clock=runtime.clock
            )
        else:
            cache = _built[2]
            cache.resize(max_bytes=settings.cache_max_bytes, ttl_s=settings.cache_ttl_s)
        processor = PillowImageProcessor(settings.image, cache=cache)
        _built = (settings, processor, cache)
        return _built


_per_model: dict[ImageSettings, PillowImageProcessor] = {}


def _processor_for(settings: ImageSettings, cache: LruImageCache) -> PillowImageProcessor:
    """A processor for a model's own size, kept so its file memo and in-flight map persist."""
    from .infrastructure.image_processor import PillowImageProcessor

    with _lock:
        processor = _per_model.get(settings)
        if processor is None or processor.cache is not cache:
            processor = _per_model[settings] = PillowImageProcessor(settings, cache=cache)
        return processor


def configure_vision(**changes: Any) -> VisionSettings:
    """Change how images are processed in this process: ``max_side``, ``format``,
    ``quality``, ``max_pixels``, ``max_bytes``, ``allow_remote``,
    ``remote_timeout_s``, ``remote_max_bytes``, ``cache_max_bytes``,
    ``cache_ttl_s``, ``model_max_side`` (a mapping of model-name prefix to side).

    Values are validated before they apply; ``configure_vision()`` with no
    arguments returns the current settings.
    """
    from .domain import ConfigurationError

    known = {f.name for f in fields(ImageSettings)} | {
        "cache_max_bytes",
        "cache_ttl_s",
        "model_max_side",
    }
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ConfigurationError(
            f"Unknown vision setting {unknown[0]!r}.", hint=f"Settings: {', '.join(sorted(known))}."
        )
    with _lock:
        previous = dict(_overrides)
        _overrides.update(changes)
    try:
        return _pipeline(None)[0]
    except (TypeError, ValueError) as exc:
        with _lock:
            _overrides.clear()
            _overrides.update(previous)
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"Vision setting rejected: {exc}") from None


def vision_settings(*, runtime: Runtime | None = None) -> VisionSettings:
    """The settings images are processed with right now."""
    return _pipeline(runtime)[0]


def reset_vision() -> None:
    """Forget overrides, the processor and the cache (tests, or a fresh start)."""
    global _built
    with _lock:
        _overrides.clear()
        _per_model.clear()
        _built = None


# --- the public surface ---------------------------------------------------------------------


def prepare_images(
    sources: Sequence[object], *, runtime: Runtime | None = None, model: str | None = None
) -> list[PreparedImage]:
    """Validate, shrink and encode each source; cached by content and settings.

    A single source (a path string, bytes, an array…) is accepted as well as a
    list. ``model`` picks a per-model size from ``model_max_side``. Several
    images are processed on a few threads: Pillow releases the GIL while it
    decodes, resizes and encodes. Raises ``ImageError`` naming the bad source.
    """
    items: list[object] = list(sources) if isinstance(sources, list | tuple) else [sources]
    if not items:
        return []
    settings, processor, cache = _pipeline(runtime)
    chosen = settings.for_model(model)
    if chosen != settings.image:
        processor = _processor_for(chosen, cache)
    if len(items) == 1:
        return [processor.prepare(items[0])]
    with ThreadPoolExecutor(
        max_workers=min(4, len(items)), thread_name_prefix="ollama-nb-img"
    ) as pool:
        return list(pool.map(processor.prepare, items))


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
    """Hits, misses, evictions, entries and bytes of the process-wide image cache."""
    return _pipeline(runtime)[2].stats()


def clear_cache(*, runtime: Runtime | None = None) -> None:
    """Drop every cached image (statistics are kept)."""
    _pipeline(runtime)[2].clear()


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
