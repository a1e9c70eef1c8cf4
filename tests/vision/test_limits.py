"""Size limits are checked from headers and shapes, before any decode, hash or conversion.

Each source kind gets an image over ``max_pixels`` and must be refused without
its pixels being touched: the lazily opened PIL image stays unloaded, the
array is never read (NumPy's ``zeros`` pages are not even mapped), the figure
is never drawn. Array conversion is measured with tracemalloc (NumPy reports
its buffers to it): a float64 image may cost its uint8 result and a band, not
two more copies of itself.
"""

from __future__ import annotations

import io
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ollama_nb.domain import ImageError
from ollama_nb.domain.images import ImageSettings
from ollama_nb.infrastructure.image_processor import PillowImageProcessor

SIDE = 12_000  # 144 megapixels: over the default 89.5 MP limit


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    Image.new("1", (SIDE, SIDE), 1).save(path)  # 18 MB to build, a few kB on disk
    return path


def _refused(processor: PillowImageProcessor, source: object) -> str:
    with pytest.raises(ImageError, match="too large to decode safely") as caught:
        processor.prepare(source)
    assert "max_pixels" in (caught.value.hint or "")
    return str(caught.value)


def test_huge_png_is_refused_from_path_and_bytes(huge_png: Path) -> None:
    processor = PillowImageProcessor(ImageSettings())
    _refused(processor, huge_png)
    _refused(processor, huge_png.read_bytes())
    _refused(processor, str(huge_png))


def test_lazily_opened_pil_image_is_refused_without_loading(huge_png: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the user's open
        lazy = Image.open(huge_png)
    processor = PillowImageProcessor(ImageSettings())
    message = _refused(processor, lazy)
    assert f"{SIDE}\u00d7{SIDE} pixels" in message
    assert lazy._im is None  # never decoded (nor hashed: hashing would load it)
    lazy.close()


def test_arrays_obey_max_pixels_before_any_conversion() -> None:
    processor = PillowImageProcessor(ImageSettings())
    # 100 MP of untouched zeros: refused from the shape, so its pages are never read.
    big = np.zeros((10_000, 10_001, 3), dtype=np.float64)
    message = _refused(processor, big)
    assert "10001\u00d710000 pixels" in message
    small_limit = PillowImageProcessor(ImageSettings(max_pixels=10_000))
    _refused(small_limit, np.zeros((101, 100), dtype=np.uint8))
    assert small_limit.prepare(np.zeros((100, 100), dtype=np.uint8)).width == 100


def test_a_huge_figure_is_refused_before_it_is_drawn() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    drawn: list[Any] = []
    figure = Figure(figsize=(400, 400))  # at the 50 dpi floor: 20000x20000 pixels
    figure.savefig = lambda *a, **k: drawn.append(a)  # type: ignore[method-assign]
    _refused(PillowImageProcessor(ImageSettings()), figure)
    assert drawn == []


def test_float_array_converts_without_tripling_memory() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.random((2000, 2000, 3))  # float64, 96 MB
    processor = PillowImageProcessor(ImageSettings(max_side=256))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        prepared = processor.prepare(pixels)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert (prepared.width, prepared.height) == (256, 256)
    # The uint8 result is 12 MB; whole-array temporaries would add 2 x 96 MB.
    assert peak < pixels.nbytes / 4, (
        f"peak {peak / 1e6:.0f} MB for a {pixels.nbytes / 1e6:.0f} MB array"
    )


def test_band_conversion_matches_the_whole_array_formula() -> None:
    rng = np.random.default_rng(5)
    floats = rng.random((700, 900, 3))
    ints = rng.integers(0, 256, size=(650, 500), dtype=np.int64)
    deep = rng.integers(0, 65536, size=(600, 400), dtype=np.uint16)
    flags = rng.random((300, 300)) > 0.5
    processor = PillowImageProcessor(ImageSettings(max_side=1024, format="PNG"))
    for array, expected in (
        (floats, np.rint(floats * 255).astype(np.uint8)),
        (ints, ints.astype(np.uint8)),
        (deep, (deep // 257).astype(np.uint8)),
        (flags, flags.astype(np.uint8) * 255),
    ):
        out = np.asarray(Image.open(io.BytesIO(processor.prepare(array).data)))
        assert np.array_equal(out, expected)


def test_non_contiguous_arrays_are_keyed_like_their_copies() -> None:
    rng = np.random.default_rng(7)
    wide = rng.integers(0, 256, size=(400, 600, 3), dtype=np.uint8)
    view = wide[:, ::2]  # strided: not C-contiguous
    processor = PillowImageProcessor(ImageSettings())
    assert processor.prepare(view).sha256 == processor.prepare(view.copy()).sha256


def test_bad_array_values_are_still_named() -> None:
    processor = PillowImageProcessor(ImageSettings())
    with pytest.raises(ImageError, match="float values from -1 to 2"):
        processor.prepare(np.linspace(-1, 2, 300 * 300).reshape(300, 300))
    with pytest.raises(ImageError, match="NaN or infinite"):
        processor.prepare(np.full((50, 50), np.nan))
    with pytest.raises(ImageError, match="integer values from 0 to 300"):
        processor.prepare(np.arange(0, 301 * 300, dtype=np.int32).reshape(301, 300) % 301)
