"""Every kind of image a notebook holds becomes the same compact, upright picture."""

from __future__ import annotations

import base64
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from IPython.display import Image as IPythonImage
from PIL import Image

from ollama_nb import vision
from ollama_nb.domain.image_errors import ImageError
from ollama_nb.infrastructure.image_processor import PillowImageProcessor

from .conftest import chart, decoded, encoded, photo

matplotlib.use("agg")


def test_pil_image_is_shrunk_to_max_side(processor: PillowImageProcessor) -> None:
    prepared = processor.prepare(photo(1600, 1200))
    assert (prepared.width, prepared.height) == (1024, 768)
    assert prepared.format == "JPEG"
    assert decoded(prepared.data).size == (1024, 768)
    assert prepared.original_bytes == 1600 * 1200 * 3
    assert prepared.source == "PIL image 1600\u00d71200 RGB"


def test_path_and_str_path(processor: PillowImageProcessor, tmp_path: Path) -> None:
    file = tmp_path / "photo.jpg"
    file.write_bytes(encoded(photo(1200, 1600), "JPEG", quality=90))
    from_path = processor.prepare(file)
    from_str = processor.prepare(str(file))
    assert (from_path.width, from_path.height) == (768, 1024)
    assert from_path.original_bytes == file.stat().st_size
    assert from_str.sha256 == from_path.sha256 and from_str.cached


def test_raw_bytes(processor: PillowImageProcessor) -> None:
    data = encoded(photo(800, 600), "PNG")
    prepared = processor.prepare(data)
    assert (prepared.width, prepared.height) == (800, 600)
    assert prepared.original_bytes == len(data)
    assert len(prepared.data) < len(data)


def test_base64_and_data_url_prefix_is_stripped(processor: PillowImageProcessor) -> None:
    text = base64.b64encode(encoded(photo(300, 200), "JPEG")).decode()
    plain = processor.prepare(text)
    with_prefix = processor.prepare(f"data:image/jpeg;base64,{text}")
    assert (plain.width, plain.height) == (300, 200)
    assert with_prefix.sha256 == plain.sha256  # same bytes once the prefix is gone


@pytest.mark.parametrize(
    ("array", "size"),
    [
        (np.full((60, 80, 3), 200, dtype=np.uint8), (80, 60)),
        (np.linspace(0, 1, 60 * 80 * 3).reshape(60, 80, 3), (80, 60)),
        (np.zeros((60, 80), dtype=np.uint8), (80, 60)),
        (np.zeros((60, 80, 1), dtype=np.uint8), (80, 60)),
        (np.zeros((60, 80, 4), dtype=np.uint8), (80, 60)),
        (np.full((60, 80), 60000, dtype=np.uint16), (80, 60)),
    ],
)
def test_numpy_arrays(
    processor: PillowImageProcessor, array: np.ndarray, size: tuple[int, int]
) -> None:
    prepared = processor.prepare(array)
    assert (prepared.width, prepared.height) == size
    assert decoded(prepared.data).size == size


def test_float_array_colours_are_scaled_from_unit_range(processor: PillowImageProcessor) -> None:
    array = np.zeros((40, 40, 3))
    array[..., 0] = 1.0  # pure red in 0..1
    pixel = decoded(processor.prepare(array).data).convert("RGB").getpixel((20, 20))
    assert pixel == (255, 0, 0)


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.full((10, 10, 3), 2.5), "float images must be in 0..1"),
        (np.zeros((10, 10, 2), dtype=np.uint8), "not an image shape"),
        (np.zeros((0, 10, 3), dtype=np.uint8), "is empty"),
        (np.full((10, 10), np.nan), "NaN"),
        (np.full((10, 10), 300, dtype=np.int32), "expected 0..255"),
    ],
)
def test_bad_arrays_say_why(
    processor: PillowImageProcessor, array: np.ndarray, problem: str
) -> None:
    with pytest.raises(ImageError, match=problem) as caught:
        processor.prepare(array)
    assert "NumPy array" in str(caught.value)


def test_matplotlib_figure_and_axes(processor: PillowImageProcessor) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.8))
    axes = figure.subplots()
    axes.plot([1, 3, 2])
    prepared = processor.prepare(figure)
    # Rendered near max_side (1024 px) directly; "tight" bounding trims a margin.
    assert 800 <= max(prepared.width, prepared.height) <= 1024
    assert prepared.format == "PNG"  # a chart: flat colours on white
    assert processor.prepare(axes).sha256 == prepared.sha256


def test_ipython_image(processor: PillowImageProcessor, tmp_path: Path) -> None:
    data = encoded(photo(320, 240), "PNG")
    from_data = processor.prepare(IPythonImage(data=data))
    file = tmp_path / "x.png"
    file.write_bytes(data)
    from_file = processor.prepare(IPythonImage(filename=str(file)))
    assert (from_data.width, from_data.height) == (320, 240)
    assert from_file.sha256 == from_data.sha256


def test_unsupported_type_lists_what_works(processor: PillowImageProcessor) -> None:
    with pytest.raises(ImageError, match=r"Image dict: is not an image source\. Pass a PIL image"):
        processor.prepare({"not": "an image"})


def test_prepare_images_keeps_order_and_accepts_a_single_source(tmp_path: Path) -> None:
    file = tmp_path / "c.png"
    file.write_bytes(encoded(chart(400, 300), "PNG"))
    prepared = vision.prepare_images([photo(200, 100), str(file), np.zeros((10, 20, 3), np.uint8)])
    assert [(p.width, p.height) for p in prepared] == [(200, 100), (400, 300), (20, 10)]
    assert vision.prepare_images(str(file))[0].sha256 == prepared[1].sha256  # type: ignore[arg-type]
    assert vision.prepare_images([]) == []


class TestIsImageSource:
    def test_images(self, tmp_path: Path) -> None:
        from matplotlib.figure import Figure

        file = tmp_path / "p.png"
        png = encoded(chart(40, 30), "PNG")
        file.write_bytes(png)
        webp = encoded(photo(40, 30), "WEBP")
        for source in (
            Image.new("RGB", (4, 4)),
            file,
            str(file),
            png,
            webp,
            base64.b64encode(png).decode(),
            "data:image/png;base64,AAAA",
            "https://example.org/cat.jpg",
            np.zeros((8, 8, 3), np.uint8),
            np.zeros((8, 8, 3), np.float32),
            np.zeros((8, 8), np.uint8),
            Figure(),
            IPythonImage(data=png),
        ):
            assert vision.is_image_source(source), source

    def test_not_images(self, tmp_path: Path) -> None:
        text_file = tmp_path / "notes.jpg"
        text_file.write_text("just words")
        for source in (
            "a plain sentence",
            "hello.jpg",  # no such file
            str(text_file),  # named .jpg, but text
            tmp_path,
            b"plain bytes",
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=" * 3,  # base64, but of text
            np.zeros((8, 8)),  # 2-D floats: data, not a picture
            np.zeros(10, np.uint8),
            [1, 2, 3],
            {"a": 1},
            None,
            42,
        ):
            assert not vision.is_image_source(source), source
