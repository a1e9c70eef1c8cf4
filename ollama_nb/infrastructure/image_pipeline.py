"""The runtime's image pipeline: one cache, and a Pillow processor per image size in use.

The runtime owns one of these, built from ``Settings.vision`` with the runtime's
clock, so every surface (magics, widgets, batches, the API) shares the cache and
an image used in many cells or rows is processed once. A settings change
resizes the cache in place (its keys include the processing settings, so
entries made under other settings are never served by mistake) instead of
throwing away what it holds.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ..application.ports import Clock
from ..domain.images import ImageSettings, PreparedImage, VisionSettings
from .image_cache import ImageCacheStats, LruImageCache
from .image_processor import PillowImageProcessor

#: Threads that decode several images of one request at once (Pillow releases the GIL).
MAX_WORKERS = 4


class ImagePipeline:
    """Sources in, small encoded images out, through one shared cache."""

    def __init__(self, settings: VisionSettings, *, clock: Clock) -> None:
        self._settings = settings
        self.cache = LruImageCache(
            max_bytes=settings.cache_max_bytes, ttl_s=settings.cache_ttl_s, clock=clock
        )
        # One processor per image size, kept so each one's file memo and in-flight map persist.
        self._processors: dict[ImageSettings, PillowImageProcessor] = {}
        self._lock = threading.Lock()

    @property
    def settings(self) -> VisionSettings:
        return self._settings

    def reconfigure(self, settings: VisionSettings) -> None:
        """Follow a settings change; the cache keeps its entries unless its bounds shrink."""
        if settings == self._settings:
            return
        if (settings.cache_max_bytes, settings.cache_ttl_s) != (
            self._settings.cache_max_bytes,
            self._settings.cache_ttl_s,
        ):
            self.cache.resize(max_bytes=settings.cache_max_bytes, ttl_s=settings.cache_ttl_s)
        self._settings = settings

    def processor(self, model: str | None = None) -> PillowImageProcessor:
        """The processor for ``model``'s image size (its override, else the default)."""
        chosen = self._settings.for_model(model)
        with self._lock:
            processor = self._processors.get(chosen)
            if processor is None:
                processor = self._processors[chosen] = PillowImageProcessor(
                    chosen, cache=self.cache
                )
            return processor

    def prepare(
        self, sources: Sequence[object], *, model: str | None = None
    ) -> list[PreparedImage]:
        """Validate, shrink and encode each source; several are processed on a few threads."""
        items = list(sources)
        if not items:
            return []
        processor = self.processor(model)
        if len(items) == 1:
            return [processor.prepare(items[0])]
        with ThreadPoolExecutor(
            max_workers=min(MAX_WORKERS, len(items)), thread_name_prefix="ollama-nb-img"
        ) as pool:
            return list(pool.map(processor.prepare, items))

    def stats(self) -> ImageCacheStats:
        return self.cache.stats()
