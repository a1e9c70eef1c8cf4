"""What the model sees: upright, opaque, 8-bit, no metadata, in a format that suits it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from ollama_nb.domain.images import ImageSettings
from ollama_nb.infrastructure.image_processor import PillowImageProcessor, looks_graphic

from .conftest import chart, decoded, encoded, photo

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def near(pixel: object, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


def halves(
    width: int, height: int, left: tuple[int, int, int], right: tuple[int, int, int]
) -> Image.Image:
    image = Image.new("RGB", (width, height), left)
    image.paste(right, (width // 2, 0, width, height))
    return image


def test_exif_orientation_is_applied_and_metadata_dropped(processor: PillowImageProcessor) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display needs a quarter turn clockwise
    exif[0x010F] = "ACME camera"
    data = encoded(halves(200, 100, RED, BLUE), "JPEG", quality=95, exif=exif.tobytes())
    prepared = processor.prepare(data)
    assert (prepared.width, prepared.height) == (100, 200)
    upright = decoded(prepared.data).convert("RGB")
    assert near(upright.getpixel((50, 20)), RED)  # the stored left edge is now the top
    assert near(upright.getpixel((50, 180)), BLUE)
    assert not upright.getexif() and "exif" not in upright.info


def test_exif_orientation_of_a_large_photo_after_resize(processor: PillowImageProcessor) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    data = encoded(photo(2400, 1200), "JPEG", exif=exif.tobytes())
    prepared = processor.prepare(data)
    assert (prepared.width, prepared.height) == (512, 1024)


@pytest.mark.parametrize("fmt", ["auto", "JPEG", "PNG", "WEBP"])
def test_alpha_is_composited_on_white(cache: object, fmt: str) -> None:
    processor = PillowImageProcessor(ImageSettings(format=fmt))  # type: ignore[arg-type]
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))  # transparent black
    image.paste((255, 0, 0, 255), (25, 25, 75, 75))
    prepared = processor.prepare(image)
    out = decoded(prepared.data)
    assert out.mode in ("RGB", "L")
    assert near(out.convert("RGB").getpixel((5, 5)), WHITE)
    assert near(out.convert("RGB").getpixel((50, 50)), RED)


def test_palette_with_transparency_and_la(processor: PillowImageProcessor) -> None:
    palette = Image.new("P", (64, 64), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (0, 0, 32, 64))
    palette.info["transparency"] = 1
    out = decoded(processor.prepare(encoded(palette, "PNG")).data).convert("RGB")
    assert near(out.getpixel((10, 10)), WHITE) and near(out.getpixel((50, 10)), RED)
    grey_alpha = Image.new("LA", (40, 40), (0, 0))
    out = decoded(processor.prepare(grey_alpha).data)
    assert out.mode == "L" and out.getpixel((5, 5)) == 255


def test_animated_gif_sends_the_first_frame_and_says_so(processor: PillowImageProcessor) -> None:
    frames = [Image.new("RGB", (60, 40), colour) for colour in (RED, BLUE, (0, 255, 0))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    prepared = processor.prepare(data)
    assert (
        prepared.note is not None and "first frame of 3" in prepared.note and "GIF" in prepared.note
    )
    assert near(decoded(prepared.data).convert("RGB").getpixel((30, 20)), RED)


def test_cmyk_and_sixteen_bit_and_bilevel(processor: PillowImageProcessor) -> None:
    cmyk = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # red in ink
    out = decoded(processor.prepare(encoded(cmyk, "JPEG", quality=95)).data).convert("RGB")
    assert near(out.getpixel((20, 20)), RED, tolerance=60)

    deep = Image.fromarray(np.full((20, 20), 32896, dtype=np.uint16))  # half of 16-bit range
    out = decoded(processor.prepare(encoded(deep, "PNG")).data)
    assert out.mode == "L" and abs(int(out.getpixel((10, 10))) - 128) <= 1  # type: ignore[arg-type]

    bilevel = Image.new("1", (30, 30), 1)
    assert decoded(processor.prepare(bilevel).data).convert("L").getpixel((3, 3)) == 255


def test_small_images_are_not_enlarged(processor: PillowImageProcessor) -> None:
    prepared = processor.prepare(photo(300, 200))
    assert (prepared.width, prepared.height) == (300, 200)


def test_jpeg_is_decoded_at_reduced_scale(processor: PillowImageProcessor) -> None:
    data = encoded(photo(2400, 1800), "JPEG", quality=90)
    image, note, orientation = processor._decode(processor._open(data, "test"), "test")
    # Draft mode: libjpeg scaled by 1/2 during decoding, the rest is a LANCZOS resize.
    assert image.size == (1200, 900)
    assert (note, orientation) == (None, 1)
    prepared = processor.prepare(data)
    assert (prepared.width, prepared.height) == (1024, 768)


def test_max_side_and_format_settings() -> None:
    processor = PillowImageProcessor(ImageSettings(max_side=512, format="WEBP", quality=70))
    prepared = processor.prepare(photo(1600, 800))
    assert (prepared.width, prepared.height, prepared.format) == (512, 256, "WEBP")
    assert decoded(prepared.data).format == "WEBP"


def test_auto_format_png_for_charts_jpeg_for_photos(processor: PillowImageProcessor) -> None:
    assert looks_graphic(chart()) and not looks_graphic(photo())
    as_png = processor.prepare(encoded(chart(), "PNG"))
    as_jpeg = processor.prepare(encoded(photo(), "PNG"))
    assert (as_png.format, as_jpeg.format) == ("PNG", "JPEG")
    assert decoded(as_png.data).format == "PNG" and decoded(as_jpeg.data).format == "JPEG"


def test_draft_may_stop_slightly_under_max_side_to_skip_the_resize() -> None:
    processor = PillowImageProcessor(ImageSettings(max_side=256))
    quarter = processor.prepare(encoded(photo(1000, 750), "JPEG"))  # 1000/4 = 250: within 10%
    assert (quarter.width, quarter.height) == (250, 188)
    exact = processor.prepare(encoded(photo(800, 600), "JPEG"))  # 800/4 = 200: too small, so 1/2
    assert (exact.width, exact.height) == (256, 192)
    png = processor.prepare(encoded(photo(1000, 750), "PNG"))  # no draft mode for PNG
    assert (png.width, png.height) == (256, 192)


def test_a_greyscale_or_palette_photo_is_sent_as_a_photo() -> None:
    """<= 256 colours is no sign of a graphic: a grey photo has 256 shades, spread out."""
    # A camera's noise is smooth at the pixel scale: a light blur makes the test photo one.
    grey = photo(4000, 2000).convert("L").filter(ImageFilter.GaussianBlur(1.5))
    palette = photo(1600, 1200).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    assert not looks_graphic(grey) and not looks_graphic(palette)
    prepared = PillowImageProcessor(ImageSettings()).prepare(encoded(grey, "PNG"))
    assert prepared.format == "JPEG" and (prepared.width, prepared.height) == (1024, 512)
    as_png = encoded(grey.resize((1024, 512), Image.Resampling.LANCZOS), "PNG")
    assert len(prepared.data) * 2 < len(as_png), (len(as_png), len(prepared.data))
    assert PillowImageProcessor(ImageSettings()).prepare(palette).format == "JPEG"
    # A few flat colours are still a graphic, whatever their spread.
    bands = Image.fromarray(
        (np.arange(64, dtype=np.uint8).repeat(25)[None, :] * 4).repeat(200, axis=0)
    )
    assert looks_graphic(bands)
