"""The ``ImageCache`` adapter: prepared images by key, least recently used first out.

Bounded two ways: the total size of the cached bytes (what the cache actually
holds in memory) and each entry's age, measured on the injected clock's
monotonic time from when it was stored. One lock guards everything, so batch
workers on many threads can share the cache; every operation is a dictionary
lookup or a few pops, so the lock is never held for long.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..application.ports import Clock
from ..domain.images import PreparedImage


@dataclass(frozen=True, slots=True)
class ImageCacheStats:
    """A snapshot for metrics: how well the cache is doing and what it holds."""

    hits: int
    misses: int
    evictions: int  # removed to stay under max_bytes
    expirations: int  # removed because older than ttl_s
    entries: int
    total_bytes: int
    max_bytes: int
    ttl_s: float
    bytes_saved: int  # original minus sent bytes, over every image stored or served
    seconds_saved: float  # processing time the hits did not spend again

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


class LruImageCache:
    """Thread-safe LRU of ``PreparedImage`` bounded by total bytes and entry age."""

    def __init__(self, *, max_bytes: int, ttl_s: float, clock: Clock) -> None:
        self._check_bounds(max_bytes, ttl_s)
        self._max_bytes = max_bytes
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[PreparedImage, float]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()
        self._hits = self._misses = self._evictions = self._expirations = 0
        self._bytes_saved = 0
        self._seconds_saved = 0.0

    @staticmethod
    def _check_bounds(max_bytes: int, ttl_s: float) -> None:
        from ..domain import ConfigurationError

        if max_bytes < 0:
            raise ConfigurationError(f"Image cache size must be 0 or more bytes, not {max_bytes}.")
        if ttl_s <= 0:
            raise ConfigurationError(f"Image cache TTL must be positive, not {ttl_s}.")

    def get(self, key: str) -> PreparedImage | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self._misses += 1
                return None
            image, stored_at = found
            if self._clock.monotonic() - stored_at >= self._ttl_s:
                self._drop(key)
                self._expirations += 1
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            self._bytes_saved += image.bytes_saved
            self._seconds_saved += image.elapsed_s
            return image

    def put(self, key: str, image: PreparedImage) -> None:
        size = len(image.data)
        with self._lock:
            self._bytes_saved += image.bytes_saved
            if key in self._entries:
                self._drop(key)
            if size > self._max_bytes:
                return  # larger than the whole cache: keeping it would evict everything
            self._expire()
            self._entries[key] = (image, self._clock.monotonic())
            self._total += size
            self._evict_to(self._max_bytes)

    def resize(self, *, max_bytes: int, ttl_s: float) -> None:
        """New bounds; applies at once (evicting if the cache shrank)."""
        self._check_bounds(max_bytes, ttl_s)
        with self._lock:
            self._max_bytes, self._ttl_s = max_bytes, ttl_s
            self._expire()
            self._evict_to(max_bytes)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._total = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def stats(self) -> ImageCacheStats:
        with self._lock:
            return ImageCacheStats(
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                expirations=self._expirations,
                entries=len(self._entries),
                total_bytes=self._total,
                max_bytes=self._max_bytes,
                ttl_s=self._ttl_s,
                bytes_saved=self._bytes_saved,
                seconds_saved=self._seconds_saved,
            )

    # --- with the lock held -----------------------------------------------------------------

    def _drop(self, key: str) -> None:
        image, _ = self._entries.pop(key)
        self._total -= len(image.data)

    def _expire(self) -> None:
        now = self._clock.monotonic()
        stale = [k for k, (_, stored_at) in self._entries.items() if now - stored_at >= self._ttl_s]
        for key in stale:
            self._drop(key)
        self._expirations += len(stale)

    def _evict_to(self, limit: int) -> None:
        while self._total > limit and self._entries:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self._evictions += 1
