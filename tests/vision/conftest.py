"""Real Pillow images made on the fly, a hand-moved clock, and a fresh runtime (so a fresh pipeline)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ollama_nb.domain.images import ImageSettings
from ollama_nb.infrastructure.image_cache import LruImageCache
from ollama_nb.infrastructure.image_processor import PillowImageProcessor
from ollama_nb.runtime import Runtime
from ollama_nb.testing import ManualClock
from ollama_nb.testing.pytest_plugin import RuntimeFactory


def photo(width: int = 1600, height: int = 1200, seed: int = 0) -> Image.Image:
    """Smooth gradients plus noise: thousands of colours, like a photograph."""
    rng = np.random.default_rng(seed)
    x = np.arange(width, dtype=np.int32)[None, :]
    y = np.arange(height, dtype=np.int32)[:, None]
    base = np.empty((height, width, 3), dtype=np.int32)
    base[..., 0] = x * 255 // width
    base[..., 1] = y * 255 // height
    base[..., 2] = (x + y) * 127 // (width + height)
    tile = rng.integers(-24, 25, size=(97, 89, 3), dtype=np.int32)  # odd sizes: no visible grid
    reps = (-(-height // 97), -(-width // 89), 1)
    base += np.tile(tile, reps)[:height, :width]
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def chart(width: int = 1600, height: int = 1000) -> Image.Image:
    """Flat colours on white: what a screenshot or a diagram looks like."""
    from PIL import ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i in range(8):
        draw.rectangle(
            (40 + i * 180, 600 - i * 60, 180 + i * 180, 900), fill=(30, 90 + i * 20, 200)
        )
        draw.text((50 + i * 180, 920), f"bar {i}", fill="black")
    draw.line((0, 500, width, 100), fill="red", width=5)
    return image


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def cache(clock: ManualClock) -> LruImageCache:
    return LruImageCache(max_bytes=50_000_000, ttl_s=3600.0, clock=clock)


@pytest.fixture
def processor(cache: LruImageCache) -> PillowImageProcessor:
    return PillowImageProcessor(ImageSettings(), cache=cache)


@pytest.fixture(autouse=True)
def runtime(ollama_runtime_factory: RuntimeFactory, tmp_path: Path, clock: ManualClock) -> Runtime:
    """The process runtime for the test: default image settings, an empty image cache."""
    return ollama_runtime_factory(data_dir=tmp_path, clock=clock)
