"""The cache: LRU by total bytes, TTL on an injected clock, safe under many threads."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ollama_nb.domain import ConfigurationError
from ollama_nb.domain.images import ImageSettings, PreparedImage
from ollama_nb.infrastructure.image_cache import LruImageCache
from ollama_nb.infrastructure.image_processor import PillowImageProcessor
from ollama_nb.testing import ManualClock

from .conftest import encoded, photo


def item(name: str, size: int = 100, original: int = 1000) -> PreparedImage:
    return PreparedImage(
        data=b"x" * size, format="JPEG", width=1, height=1, original_bytes=original,
        sha256=name, elapsed_s=0.5,
    )  # fmt: skip


def test_least_recently_used_goes_first(clock: ManualClock) -> None:
    cache = LruImageCache(max_bytes=300, ttl_s=60, clock=clock)
    for name in "abc":
        cache.put(name, item(name))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", item("d"))  # over 300 bytes: b, the least recent, goes
    assert "b" not in cache and all(k in cache for k in "acd")
    stats = cache.stats()
    assert (stats.evictions, stats.entries, stats.total_bytes) == (1, 3, 300)


def test_byte_bound_evicts_as_many_as_needed(clock: ManualClock) -> None:
    cache = LruImageCache(max_bytes=1000, ttl_s=60, clock=clock)
    for i in range(10):
        cache.put(str(i), item(str(i)))
    cache.put("big", item("big", size=750))
    assert [k for k in map(str, range(10)) if k in cache] == ["8", "9"]
    assert cache.stats().total_bytes == 950 and cache.stats().evictions == 8
    cache.put("huge", item("huge", size=5000))  # bigger than the cache: not kept, nothing evicted
    assert "huge" not in cache and len(cache) == 3


def test_ttl_expiry_on_the_injected_clock(clock: ManualClock) -> None:
    cache = LruImageCache(max_bytes=10_000, ttl_s=3600, clock=clock)
    cache.put("old", item("old"))
    clock.advance(1800)
    cache.put("new", item("new"))
    clock.advance(1799)
    assert cache.get("old") is not None  # 3599 s: still fresh (hits do not extend the TTL)
    clock.advance(1)
    assert cache.get("old") is None and cache.get("new") is not None
    clock.advance(1800)
    cache.put("newest", item("newest"))  # a put sweeps what expired meanwhile
    assert "new" not in cache
    stats = cache.stats()
    assert (stats.expirations, stats.hits, stats.misses) == (2, 2, 1)


def test_stats_and_resize(clock: ManualClock) -> None:
    cache = LruImageCache(max_bytes=1000, ttl_s=60, clock=clock)
    cache.put("a", item("a", size=400, original=1400))
    cache.put("b", item("b", size=400, original=1400))
    assert cache.get("a") is not None and cache.get("zzz") is None
    stats = cache.stats()
    assert stats.bytes_saved == 3 * 1000  # two stores and one hit, 1000 bytes each
    assert stats.seconds_saved == pytest.approx(0.5) and stats.hit_rate == 0.5
    cache.resize(max_bytes=500, ttl_s=30)
    assert "b" not in cache and "a" in cache  # a was used more recently
    with pytest.raises(ConfigurationError):
        cache.resize(max_bytes=-1, ttl_s=30)
    cache.clear()
    assert len(cache) == 0 and cache.stats().total_bytes == 0


def test_many_threads_keep_the_books_straight(clock: ManualClock) -> None:
    cache = LruImageCache(max_bytes=5_000, ttl_s=60, clock=clock)
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        start.wait()
        for i in range(500):
            key = str((worker * 7 + i) % 80)
            if cache.get(key) is None:
                cache.put(key, item(key))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    stats = cache.stats()
    assert stats.hits + stats.misses == 8 * 500
    assert stats.total_bytes == 100 * stats.entries <= 5_000  # the byte total matches the entries


def test_an_image_used_again_is_processed_once(
    processor: PillowImageProcessor, cache: LruImageCache
) -> None:
    array = np.asarray(photo(800, 600))
    first = processor.prepare(array)
    again = processor.prepare(array.copy())
    assert not first.cached and again.cached and again.data == first.data
    assert cache.stats().hits == 1 and cache.stats().misses == 1
    tweaked = array.copy()
    tweaked[0, 0] ^= 1
    assert not processor.prepare(tweaked).cached  # one pixel differs: a different key


def test_settings_are_part_of_the_key(cache: LruImageCache) -> None:
    data = encoded(photo(800, 600), "PNG")
    small = PillowImageProcessor(ImageSettings(max_side=256), cache=cache).prepare(data)
    large = PillowImageProcessor(ImageSettings(max_side=512), cache=cache).prepare(data)
    assert (small.width, large.width) == (256, 512) and small.sha256 != large.sha256


def test_a_file_seen_before_is_not_read_again_until_it_changes(
    processor: PillowImageProcessor, tmp_path: Path
) -> None:
    file = tmp_path / "p.png"
    file.write_bytes(encoded(photo(300, 200, seed=1), "PNG"))
    first = processor.prepare(file)
    assert processor.prepare(str(file)).cached
    file.write_bytes(encoded(photo(300, 200, seed=2), "PNG"))
    os.utime(file, ns=(1, 1))  # a different mtime, whatever the file system's resolution
    changed = processor.prepare(file)
    assert not changed.cached and changed.sha256 != first.sha256


def test_concurrent_batch_workers_share_one_processing(
    processor: PillowImageProcessor, cache: LruImageCache
) -> None:
    sources = [encoded(photo(400, 300, seed=i % 4), "PNG") for i in range(4)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(processor.prepare, [sources[i % 4] for i in range(40)]))
    assert len({r.sha256 for r in results}) == 4
    assert cache.stats().entries == 4
    assert sum(not r.cached for r in results) == 4  # racing workers waited for the one doing it
    assert cache.stats().misses == 4
