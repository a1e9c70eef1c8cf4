"""The public surface: settings, thumbnails, stats."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ollama_nb import vision
from ollama_nb.domain import ConfigurationError
from ollama_nb.domain.images import PreparedImage, human_bytes
from ollama_nb.runtime import Runtime
from ollama_nb.testing import ManualClock

from .conftest import photo


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (0, 999, 8_500, 85_000, 1_234_567, 2_500_000_000)] == [
        "0 B", "999 B", "8.5 kB", "85 kB", "1.2 MB", "2.5 GB",
    ]  # fmt: skip


def test_thumbnails_show_what_was_sent() -> None:
    prepared = vision.prepare_images([photo(1600, 1200), np.zeros((30, 40, 3), np.uint8)])
    html = vision.thumbnails_html(prepared)
    assert html.count("<img ") == 2
    assert "5.8 MB → " in html and "1024\u00d7768 JPEG" in html
    assert "40\u00d730 PNG" in html
    assert re.search(r'src="data:image/jpeg;base64,[A-Za-z0-9+/=]+"', html)
    assert vision.thumbnails_html([]) == ""
    again = vision.prepare_images([photo(1600, 1200)])
    assert ", cached" in vision.thumbnails_html(again)


def test_caption_and_repr_stay_short() -> None:
    image = PreparedImage(b"x" * 85_000, "JPEG", 1024, 768, 1_200_000, "k", source="cat.jpg")
    assert vision.caption(image) == "1.2 MB → 85 kB, 1024\u00d7768 JPEG"
    assert repr(image) == "PreparedImage(cat.jpg: 1024\u00d7768 JPEG, 1.2 MB → 85 kB)"


def test_image_settings_are_runtime_settings_validated_and_applied(runtime: Runtime) -> None:
    vision.prepare_images([photo(1000, 500)])  # the pipeline exists before the change
    runtime.configure(image_max_side=256, image_format="png")
    assert vision.vision_settings().image.format == "PNG"
    assert vision.prepare_images([photo(1000, 500)])[0].width == 256
    with pytest.raises(ConfigurationError, match="Unknown setting 'image_side'"):
        runtime.configure(image_side=3)
    with pytest.raises(ConfigurationError, match="image_quality"):
        runtime.configure(image_quality=500)
    assert vision.vision_settings().image.max_side == 256  # the bad change did not stick


def test_the_cache_uses_the_runtime_clock_and_follows_its_bounds(
    runtime: Runtime, clock: ManualClock
) -> None:
    vision.prepare_images([photo(300, 200)])
    clock.advance(3601)  # older than image_cache_ttl_s on the runtime's own clock
    vision.prepare_images([photo(300, 200)])
    assert vision.cache_stats().hits == 0
    runtime.configure(image_cache_ttl_s=60.0, image_cache_bytes=10_000_000)
    stats = vision.cache_stats()
    assert (stats.ttl_s, stats.max_bytes, stats.entries) == (60.0, 10_000_000, 1)


def test_per_model_max_side(runtime: Runtime) -> None:
    runtime.configure(image_model_max_side={"moondream": 384})
    assert vision.prepare_images([photo(1000, 500)], model="moondream:latest")[0].width == 384
    assert vision.prepare_images([photo(1000, 500)], model="gemma3:4b")[0].width == 1000


def test_cache_stats_count_hits() -> None:
    vision.prepare_images([photo(300, 200)])
    vision.prepare_images([photo(300, 200)])
    stats = vision.cache_stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)
    assert stats.max_bytes == 1024**3 and stats.ttl_s == 3600
    vision.clear_cache()
    assert vision.cache_stats().entries == 0
