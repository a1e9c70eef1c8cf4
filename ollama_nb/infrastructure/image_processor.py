"""The Pillow pipeline behind the ``ImageProcessor`` port.

Read the source (whatever a notebook holds), validate it, normalise it (EXIF
orientation, no metadata, RGB or grey on white), shrink it so the longest side
fits, and encode it. JPEGs are decoded at reduced scale with Pillow's draft
mode: libjpeg skips most of the inverse DCT work, so a 12-megapixel photo costs
a fraction of a full decode before the final high-quality resize.

Limits come first, from what is known without work: the byte size of a file
or buffer, the dimensions in an image's header (Pillow opens lazily), a PIL
image's ``size``, an array's ``shape``, a figure's inches times DPI. Only a
source inside ``max_bytes`` and ``max_pixels`` is hashed, decoded or converted,
so a 12000x12000 PNG of 420 kB is refused in milliseconds without a pixel
buffer. Arrays are hashed and converted in bands of rows, so a float image
never costs more than its uint8 result on top of itself.

The cache key is the SHA-256 of the original bytes (pixels, for in-memory
images) plus the settings that shape the output; it is computed before any
decoding, so a repeated image costs a hash and a dictionary lookup. For files
the key is also remembered by (path, size, mtime, inode), so the same file
used again is not even re-read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import (  # the plugins register the formats in DECODABLE
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    Image,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    UnidentifiedImageError,
    WebPImagePlugin,  # noqa: F401
)

from ..application.ports import ImageCache
from ..domain.image_errors import ImageError
from ..domain.images import ImageSettings, PreparedImage, human_bytes

#: What we decode; anything else (PSD, ICO, EPS…) is refused rather than guessed at.
#: (Multi-picture JPEGs from phones open through the JPEG entry as format "MPO".)
DECODABLE = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
_READABLE_NAMES = "JPEG, PNG, GIF, WebP, BMP or TIFF"

#: EXIF orientation -> the transpose that shows the picture upright.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION_TAG = 0x0112

#: How far below ``max_side`` a JPEG decoded at reduced scale may come out.
DRAFT_UNDERSHOOT = 0.9

#: Array elements hashed or converted at a time (a band of rows): bounds the temporaries.
BAND_ELEMENTS = 1 << 18

_ACCEPTED = (
    "Pass a PIL image, a file path, bytes, base64 text or a data: URL, a NumPy array, "
    "a matplotlib figure or an IPython.display.Image."
)


@dataclass(slots=True)
class _Source:
    """A source read into memory, not yet decoded."""

    description: str
    original_bytes: int
    data: bytes | None = None  # encoded image bytes
    opened: Image.Image | None = None  # ``data`` opened lazily: header read, nothing decoded
    pixels: Image.Image | None = None  # an in-memory image
    array: Any = None  # a NumPy array, converted only on a cache miss
    path: Path | None = None  # the file it was read from, to skip re-reading it next time


class PillowImageProcessor:
    """Prepares images with Pillow; thread-safe, so batch workers can share one."""

    def __init__(self, settings: ImageSettings, *, cache: ImageCache | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self._file_keys: OrderedDict[tuple[str, int, int, int], str] = OrderedDict()
        self._file_keys_lock = threading.Lock()
        self._inflight: dict[str, Future[PreparedImage]] = {}
        self._inflight_lock = threading.Lock()

    # --- the port ---------------------------------------------------------------------------

    def prepare(self, source: object) -> PreparedImage:
        """Compact bytes for ``source``, from the cache when the same image was seen."""
        started = time.perf_counter()
        if isinstance(source, Path | str) and not _is_inline_str(source):
            path = _as_path(source)
            if path is not None:
                cached = self._cached_file(path, started)
                if cached is not None:
                    return cached
        raw = self._read(source)
        key = self._digest(raw)
        if raw.path is not None:
            self._remember_file(raw.path, key)
        # One thread processes a given key; others wanting it meanwhile wait for that
        # result, so batch workers racing on the same image do the work once.
        with self._inflight_lock:
            pending = self._inflight.get(key)
            if pending is None:
                mine: Future[PreparedImage] = Future()
                self._inflight[key] = mine
        if pending is not None:
            return self._reused(pending.result(), raw, started)
        try:
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                mine.set_result(hit)
                return self._reused(hit, raw, started)
            prepared = self._process(raw, key, started)
            if self.cache is not None:
                self.cache.put(key, prepared)
            mine.set_result(prepared)
            return prepared
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        finally:
            with self._inflight_lock:
                del self._inflight[key]

    @staticmethod
    def _reused(image: PreparedImage, raw: _Source, started: float) -> PreparedImage:
        return replace(
            image, cached=True, source=raw.description, elapsed_s=time.perf_counter() - started
        )

    # --- reading sources --------------------------------------------------------------------

    def _read(self, source: object) -> _Source:
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            return self._checked_bytes(data, f"bytes ({human_bytes(len(data))})")
        if isinstance(source, Path):
            return self._read_file(source, _short(str(source)))
        if isinstance(source, str):
            return self._read_text(source)
        if isinstance(source, Image.Image):
            raw = _pil_source(source)
            self._check_pixels(source.size, raw.description)  # size is in the header: no load
            return raw
        kind = type(source)
        module = kind.__module__
        if module == "numpy" and kind.__name__ == "ndarray":
            raw = _array_source(source)
            self._check_pixels((raw.array.shape[1], raw.array.shape[0]), raw.description)
            return raw
        if module.startswith("matplotlib."):
            figure = (
                getattr(source, "figure", None) if module.startswith("matplotlib.axes") else source
            )
            if figure is not None and callable(getattr(figure, "savefig", None)):
                return self._render_figure(figure)
        if module.startswith("IPython.") and kind.__name__ == "Image":
            return self._read_ipython_image(source)
        raise ImageError(kind.__name__, "is not an image source.", hint=_ACCEPTED)

    def _read_text(self, text: str) -> _Source:
        stripped = text.strip()
        if stripped.startswith("data:"):
            header, _, payload = stripped.partition(",")
            if not header.endswith(";base64") or not payload:
                raise ImageError(
                    _short(stripped, 40),
                    "is not a base64 data: URL.",
                    hint="Expected data:image/…;base64,…",
                )
            return self._decode_base64(payload, f"data: URL ({human_bytes(len(payload))})")
        if stripped.startswith(("http://", "https://")):
            return self._fetch(stripped)
        path = _as_path(stripped)
        if path is not None and path.exists():
            return self._read_file(path, _short(stripped))
        if _maybe_base64(stripped):
            return self._decode_base64(stripped, f"base64 text ({human_bytes(len(stripped))})")
        if path is not None and (path.suffix or "/" in stripped or "\\" in stripped):
            raise ImageError(
                _short(stripped),
                "no such file.",
                hint="Check the path (relative paths start at the notebook's folder).",
            )
        raise ImageError(
            _short(stripped, 40),
            "is neither a file path, a URL nor base64 image data.",
            hint=_ACCEPTED,
        )

    def _decode_base64(self, payload: str, description: str) -> _Source:
        if len(payload) * 3 // 4 > self.settings.max_bytes:
            raise self._too_big(description, len(payload) * 3 // 4)
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ImageError(description, "is not valid base64.") from None
        return self._checked_bytes(data, description)

    def _read_file(self, path: Path, description: str) -> _Source:
        try:
            if path.is_dir():
                raise ImageError(description, "is a directory, not an image file.")
            size = path.stat().st_size
            if size > self.settings.max_bytes:
                raise self._too_big(description, size)
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageError(description, "no such file.") from None
        except PermissionError:
            raise ImageError(description, "cannot be read (permission denied).") from None
        except OSError as exc:
            raise ImageError(description, f"cannot be read ({exc.strerror or exc}).") from None
        source = self._checked_bytes(data, description)
        source.path = path
        return source

    def _checked_bytes(self, data: bytes, description: str) -> _Source:
        """Size limits from the byte count and the header, before any hash or decode."""
        if not data:
            raise ImageError(description, "is empty (0 bytes).")
        if len(data) > self.settings.max_bytes:
            raise self._too_big(description, len(data))
        opened = self._open(data, description)
        self._check_pixels(opened.size, description)
        return _Source(description, len(data), data=data, opened=opened)

    def _open(self, data: bytes, description: str) -> Image.Image:
        """Pillow's lazy open: reads the header (format, mode, size); decodes nothing."""
        try:
            return Image.open(io.BytesIO(data), formats=DECODABLE)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise self._bomb(description, None) from None
        except UnidentifiedImageError:
            raise ImageError(
                description,
                f"is not a readable {_READABLE_NAMES} image (unknown or damaged content).",
            ) from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(description, f"is corrupt ({exc}).") from None

    def _too_big(self, description: str, size: int) -> ImageError:
        return ImageError(
            description,
            f"is {size:,} bytes, over the {self.settings.max_bytes:,}-byte limit.",
            hint="Shrink it first, or raise the limit: `%ollama config image_max_bytes=...`.",
        )

    def _fetch(self, url: str) -> _Source:
        description = _short(url)
        if not self.settings.allow_remote:
            raise ImageError(
                description,
                "remote URLs are not fetched.",
                hint="Download it yourself, or allow it: `%ollama config image_fetch_remote=true`.",
            )
        import httpx

        cap = self.settings.remote_max_bytes
        try:
            with (
                httpx.Client(
                    timeout=self.settings.remote_timeout_s, follow_redirects=True
                ) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code >= 400:
                    raise ImageError(description, f"download failed (HTTP {response.status_code}).")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise ImageError(
                        description,
                        f"is {int(declared):,} bytes, over the {cap:,}-byte download limit.",
                    )
                chunks: list[bytes] = []
                received = 0
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received > cap:
                        raise ImageError(description, f"is over the {cap:,}-byte download limit.")
                    chunks.append(chunk)
        except httpx.TimeoutException:
            raise ImageError(
                description, f"download timed out after {self.settings.remote_timeout_s:g} s."
            ) from None
        except httpx.HTTPError as exc:
            raise ImageError(
                description, f"download failed ({type(exc).__name__}: {exc})."
            ) from None
        return self._checked_bytes(b"".join(chunks), description)

    def _render_figure(self, figure: Any) -> _Source:
        """PNG at a DPI that makes the longest side about ``max_side``: no resize needed.

        The canvas is checked against ``max_pixels`` before drawing: Agg allocates
        the whole canvas (4 bytes a pixel) even when ``bbox_inches`` crops it later.
        """
        width_in, height_in = figure.get_size_inches()
        dpi = min(300.0, max(50.0, self.settings.max_side / max(width_in, height_in, 0.1)))
        label = getattr(figure, "number", None)
        description = f"matplotlib figure {label}" if label is not None else "matplotlib figure"
        self._check_pixels((round(width_in * dpi), round(height_in * dpi)), description)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        data = buffer.getvalue()
        return _Source(description, len(data), data=data, opened=self._open(data, description))

    def _read_ipython_image(self, image: Any) -> _Source:
        data = getattr(image, "data", None)
        name = getattr(image, "filename", None) or getattr(image, "url", None)
        description = f"IPython Image {_short(name)}" if name else "IPython Image"
        if isinstance(data, bytes) and data:
            return self._checked_bytes(data, description)
        url = getattr(image, "url", None)
        if isinstance(url, str) and url:
            return self._fetch(url)
        raise ImageError(description, "holds no image data.")

    # --- the cache key ----------------------------------------------------------------------

    def _digest(self, raw: _Source) -> str:
        digest = hashlib.sha256(self.settings.fingerprint.encode())
        if raw.data is not None:
            digest.update(b"bytes:")
            digest.update(raw.data)
        elif raw.array is not None:
            digest.update(f"array:{raw.array.shape}:{raw.array.dtype.str}:".encode())
            for band in _bands(raw.array):
                digest.update(_contiguous(band).data)
        else:
            assert raw.pixels is not None
            image = raw.pixels
            digest.update(f"pixels:{image.mode}:{image.size}:".encode())
            palette = image.getpalette() if image.mode == "P" else None
            if palette:
                digest.update(bytes(palette))
            digest.update(image.tobytes())
        return digest.hexdigest()

    def _cached_file(self, path: Path, started: float) -> PreparedImage | None:
        """A cache hit for a file seen before and unchanged since, without reading it."""
        if self.cache is None:
            return None
        try:
            info = path.stat()
        except OSError:
            return None
        identity = (str(path.resolve()), info.st_size, info.st_mtime_ns, info.st_ino)
        with self._file_keys_lock:
            key = self._file_keys.get(identity)
        if key is None:
            return None
        hit = self.cache.get(key)
        if hit is None:
            return None
        return replace(
            hit, cached=True, source=_short(str(path)), elapsed_s=time.perf_counter() - started
        )

    def _remember_file(self, path: Path, key: str) -> None:
        try:
            info = path.stat()
        except OSError:
            return
        identity = (str(path.resolve()), info.st_size, info.st_mtime_ns, info.st_ino)
        with self._file_keys_lock:
            self._file_keys[identity] = key
            self._file_keys.move_to_end(identity)
            while len(self._file_keys) > 4096:
                self._file_keys.popitem(last=False)

    # --- processing -------------------------------------------------------------------------

    def _process(self, raw: _Source, key: str, started: float) -> PreparedImage:
        note: str | None = None
        orientation = 1
        if raw.opened is not None:
            image, note, orientation = self._decode(raw.opened, raw.description)
        elif raw.array is not None:
            image = _array_to_image(raw.array, raw.description)
        else:
            assert raw.pixels is not None
            image = raw.pixels
            self._check_pixels(image.size, raw.description)
            orientation = _orientation(image)
        image = _normalised_mode(image)
        image = self._fit(image)
        if orientation in _ORIENTATION:
            image = image.transpose(_ORIENTATION[orientation])
        image = _on_white(image)
        fmt = self._choose_format(image)
        data = self._encode(image, fmt)
        return PreparedImage(
            data=data,
            format=fmt,
            width=image.width,
            height=image.height,
            original_bytes=raw.original_bytes,
            sha256=key,
            elapsed_s=time.perf_counter() - started,
            source=raw.description,
            note=note,
        )

    def _decode(self, image: Image.Image, description: str) -> tuple[Image.Image, str | None, int]:
        """Decode an image opened (and size-checked) by ``_checked_bytes``."""
        note = None
        frames = int(getattr(image, "n_frames", 1))
        if frames > 1 and image.format != "MPO":
            image.seek(0)
            note = f"first frame of {frames} (animated {image.format}); only it was sent"
        orientation = _orientation(image)
        if image.format in ("JPEG", "MPO"):
            scale = self._draft_scale(image.size)
            if scale > 1:
                image.draft(None, (image.width // scale, image.height // scale))
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            problem = "is truncated" if "truncated" in str(exc) else f"is corrupt ({exc})"
            raise ImageError(description, f"{problem}.") from None
        return image, note, orientation

    def _check_pixels(self, size: tuple[int, int], description: str) -> None:
        if size[0] * size[1] > self.settings.max_pixels:
            raise self._bomb(description, size)

    def _bomb(self, description: str, size: tuple[int, int] | None) -> ImageError:
        dims = f"{size[0]}\u00d7{size[1]} pixels, " if size else ""
        return ImageError(
            description,
            f"is too large to decode safely ({dims}over {self.settings.max_pixels:,} pixels).",
            hint="It may be a decompression bomb; if you trust it, raise `%ollama config image_max_pixels=...`.",
        )

    def _draft_scale(self, size: tuple[int, int]) -> int:
        """The largest of libjpeg's 1/2, 1/4, 1/8 decoding scales worth using.

        Allowed to undershoot ``max_side`` by up to 10%: a 4000x3000 photo then
        decodes straight to 1000x750 (a quarter of the work, and no resize at all)
        instead of to 2000x1500 and a LANCZOS pass down to 1024x768.
        """
        longest = max(size)
        for scale in (8, 4, 2):
            if longest / scale >= DRAFT_UNDERSHOOT * self.settings.max_side:
                return scale
        return 1

    def _target(self, size: tuple[int, int]) -> tuple[int, int]:
        width, height = size
        longest = max(width, height)
        if longest <= self.settings.max_side:
            return size
        scale = self.settings.max_side / longest
        return max(1, round(width * scale)), max(1, round(height * scale))

    def _fit(self, image: Image.Image) -> Image.Image:
        """LANCZOS down to the target; a 2x box reduction first when the ratio is 3 or more.

        ``reducing_gap=1.5`` lets Pillow average 2x2 blocks before the LANCZOS
        pass on a 4K screenshot, which halves the resize time and keeps text crisp.
        """
        target = self._target(image.size)
        if target == image.size:
            return image
        return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=1.5)

    def _choose_format(self, image: Image.Image) -> str:
        if self.settings.format != "auto":
            return self.settings.format
        return "PNG" if looks_graphic(image) else "JPEG"

    def _encode(self, image: Image.Image, fmt: str) -> bytes:
        buffer = io.BytesIO()
        if fmt == "JPEG":
            image.save(buffer, format="JPEG", quality=self.settings.quality, optimize=True)
        elif fmt == "WEBP":
            image.save(buffer, format="WEBP", quality=self.settings.quality, method=4)
        else:
            image.save(buffer, format="PNG", compress_level=6)
        return buffer.getvalue()


# --- pure helpers -----------------------------------------------------------------------------


#: Fewer colours than this is a graphic whatever their spread (a chart, a posterised icon).
GRAPHIC_MAX_COLOURS = 64


def looks_graphic(image: Image.Image) -> bool:
    """Charts, diagrams and screenshots: few colours, most pixels in a handful of them.

    Counted on a nearest-neighbour sample of at most 128x128 pixels (exact
    colours, no blending), and Pillow stops counting once a sample shows more
    than 4096 colours, so a photo is recognised in about a millisecond. Flat
    graphics put most pixels in their top sixteen colours even with
    anti-aliased edges and text. A colour count alone does not tell: a
    greyscale photo has at most 256 shades and a palette (GIF-style) photo 256
    colours, yet their pixels spread over all of them, and PNG keeps such a
    photo at several times the size of a JPEG.
    """
    sample = image
    if image.width * image.height > 16384:
        scale = (16384 / (image.width * image.height)) ** 0.5
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        sample = image.resize(size, Image.Resampling.NEAREST)
    colours = sample.getcolors(maxcolors=4096)
    if colours is None:
        return False
    if len(colours) <= GRAPHIC_MAX_COLOURS:
        return True
    counts = sorted((count for count, _ in colours), reverse=True)
    return sum(counts[:16]) >= 0.6 * sample.width * sample.height


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError):  # malformed EXIF: show it as stored
        return 1
    return value if isinstance(value, int) else 1


def _normalised_mode(image: Image.Image) -> Image.Image:
    """RGB, RGBA, L or LA: modes that resize well and encode to every target format."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "LA"):
        return image
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if mode == "PA":
        return image.convert("RGBA")
    if mode == "1":
        return image.convert("L")
    if mode == "La":
        return image.convert("LA")
    if mode == "RGBa":
        return image.convert("RGBA")
    if mode.startswith("I"):  # 16- or 32-bit integer grey: 16-bit range to 8 bits
        return image.convert("I").point(lambda value: value / 257).convert("L")
    if mode == "F":
        low, high = image.getextrema()
        span = float(high) - float(low) or 1.0  # type: ignore[arg-type]
        return image.point(lambda value: (value - float(low)) * 255 / span).convert("L")  # type: ignore[arg-type]
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def _on_white(image: Image.Image) -> Image.Image:
    """Composite transparency on white: vision runners drop alpha and would show black."""
    if image.mode not in ("RGBA", "LA"):
        return image
    opaque = "RGB" if image.mode == "RGBA" else "L"
    background = Image.new(opaque, image.size, "white")
    background.paste(image, mask=image.getchannel("A"))
    return background


def _pil_source(image: Image.Image) -> _Source:
    description = f"PIL image {image.width}\u00d7{image.height} {image.mode}"
    return _Source(description, _raw_size(image), pixels=image)


def _raw_size(image: Image.Image) -> int:
    bands = len(image.getbands())
    bits = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}.get(image.mode, 8)
    return image.width * image.height * bands * bits // 8


def _array_source(array: Any) -> _Source:
    """Shape and dtype checks only: the array is neither copied nor made contiguous here."""
    shape = "\u00d7".join(str(n) for n in array.shape)
    description = f"NumPy array {shape} {array.dtype}"
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ImageError(
            description,
            "is not an image shape.",
            hint="Use H\u00d7W (grey), H\u00d7W\u00d73 (RGB) or H\u00d7W\u00d74 (RGBA).",
        )
    if array.size == 0:
        raise ImageError(description, "is empty.")
    if array.dtype.kind not in "buif":
        raise ImageError(description, f"has dtype {array.dtype}; expected uint8 or float in 0..1.")
    return _Source(description, int(array.nbytes), array=array)


def _bands(array: Any) -> Iterator[Any]:
    """Views of ``array`` a few rows at a time (about ``BAND_ELEMENTS`` elements each)."""
    per_row = max(1, array.size // array.shape[0])
    rows = max(1, BAND_ELEMENTS // per_row)
    for start in range(0, array.shape[0], rows):
        yield array[start : start + rows]


def _contiguous(band: Any) -> Any:
    import numpy

    return numpy.ascontiguousarray(band)  # a view when it already is; else a band-sized copy


def _array_to_image(array: Any, description: str) -> Image.Image:
    """uint8 pixels for Pillow, built band by band into one preallocated result.

    Whole-array expressions (``rint(a * 255).astype(uint8)``) would hold two
    temporaries the size of a float64 input at once; here the extra memory is
    the uint8 result plus one band.
    """
    import numpy

    pixels = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array
    kind = pixels.dtype.kind
    if kind == "f":
        low, high, finite = _float_range(pixels)
        if not finite:
            raise ImageError(description, "contains NaN or infinite values.")
        if low < 0.0 or high > 1.0:
            raise ImageError(
                description,
                f"has float values from {low:g} to {high:g}; float images must be in 0..1.",
                hint="Divide by 255, or convert with .astype('uint8').",
            )
    elif kind in "ui" and pixels.dtype not in (numpy.uint8, numpy.uint16):
        low_i = min(int(band.min()) for band in _bands(pixels))
        high_i = max(int(band.max()) for band in _bands(pixels))
        if low_i < 0 or high_i > 255:
            raise ImageError(
                description, f"has integer values from {low_i} to {high_i}; expected 0..255."
            )
    if pixels.dtype == numpy.uint8:
        return Image.fromarray(_contiguous(pixels))
    result = numpy.empty(pixels.shape, dtype=numpy.uint8)
    row = 0
    for band in _bands(pixels):
        target = result[row : row + band.shape[0]]
        if kind == "b":
            numpy.multiply(band, 255, out=target, casting="unsafe")
        elif kind == "f":
            scaled = band * 255.0
            numpy.rint(scaled, out=scaled)
            target[...] = scaled
        elif pixels.dtype == numpy.uint16:
            numpy.floor_divide(band, 257, out=target, casting="unsafe")
        else:
            target[...] = band
        row += band.shape[0]
    return Image.fromarray(result)


def _float_range(pixels: Any) -> tuple[float, float, bool]:
    import numpy

    low, high = numpy.inf, -numpy.inf
    for band in _bands(pixels):
        if not numpy.isfinite(band).all():
            return 0.0, 0.0, False
        low, high = min(low, float(band.min())), max(high, float(band.max()))
    return float(low), float(high), True


def _is_inline_str(source: object) -> bool:
    return isinstance(source, str) and source.lstrip().startswith(("data:", "http://", "https://"))


def _as_path(source: str | Path) -> Path | None:
    """``source`` as a file-system path, or None when it cannot be one (too long, a newline)."""
    if isinstance(source, Path):
        return source.expanduser()
    if not source or len(source) > 4096 or "\n" in source or "\x00" in source:
        return None
    try:
        path = Path(source).expanduser()
        path.exists()  # raises on names the OS rejects (too long)
    except (OSError, ValueError):
        return None
    return path


def _maybe_base64(text: str) -> bool:
    compact = "".join(text.split())
    return (
        len(compact) >= 16
        and len(compact) % 4 == 0
        and compact.rstrip("=").replace("+", "").replace("/", "").isalnum()
    )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
