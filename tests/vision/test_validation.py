"""Bad images fail before anything is sent, with one line naming the image and the problem."""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ollama_nb.domain import InvalidInputError, OllamaNbError
from ollama_nb.domain.image_errors import ImageError
from ollama_nb.domain.images import ImageSettings
from ollama_nb.infrastructure.image_processor import PillowImageProcessor

from .conftest import encoded, photo


def png_header(width: int, height: int) -> bytes:
    """A valid PNG that declares huge dimensions but holds almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def assert_image_error(
    processor: PillowImageProcessor, source: object, *fragments: str
) -> ImageError:
    with pytest.raises(ImageError) as caught:
        processor.prepare(source)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    assert len(message.splitlines()) <= 2
    assert isinstance(caught.value, InvalidInputError) and isinstance(caught.value, OllamaNbError)
    return caught.value


def test_corrupt_bytes(processor: PillowImageProcessor) -> None:
    assert_image_error(
        processor, b"\xff\xd8\xff\xe0" + b"\x00garbage" * 50, "bytes (", "not a readable JPEG, PNG"
    )


def test_truncated_file(processor: PillowImageProcessor, tmp_path: Path) -> None:
    data = encoded(photo(400, 300), "JPEG")
    file = tmp_path / "cut.jpg"
    file.write_bytes(data[: len(data) // 2])
    error = assert_image_error(processor, file, "cut.jpg", "truncated")
    assert error.source.endswith("cut.jpg")


def test_text_file_named_jpg(processor: PillowImageProcessor, tmp_path: Path) -> None:
    file = tmp_path / "fake.jpg"
    file.write_text("this is not a picture\n" * 10)
    assert_image_error(processor, file, "fake.jpg", "not a readable")


def test_zero_byte_file_and_directory(processor: PillowImageProcessor, tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert_image_error(processor, empty, "empty.png", "is empty (0 bytes)")
    assert_image_error(processor, tmp_path, "is a directory")
    assert_image_error(processor, str(tmp_path / "missing.png"), "missing.png", "no such file")


def test_words_are_neither_path_nor_base64(processor: PillowImageProcessor) -> None:
    assert_image_error(processor, "a cat on a mat", "neither a file path, a URL nor base64")


@pytest.mark.parametrize("side", [10_000, 100_000])
def test_decompression_bombs_are_refused_before_decoding(
    processor: PillowImageProcessor, side: int
) -> None:
    # 10,000² trips Pillow's warning threshold, 100,000² its hard limit; both are ours to report.
    assert_image_error(
        processor, png_header(side, side), "too large to decode safely", "image_max_pixels"
    )


def test_our_pixel_limit(tmp_path: Path) -> None:
    processor = PillowImageProcessor(ImageSettings(max_pixels=1_000_000))
    assert_image_error(
        processor, encoded(photo(1200, 900), "PNG"), "1200\u00d7900 pixels", "1,000,000"
    )
    assert_image_error(processor, photo(1200, 900), "PIL image", "too large")


def test_byte_limit_checked_before_reading(tmp_path: Path) -> None:
    processor = PillowImageProcessor(ImageSettings(max_bytes=1000))
    file = tmp_path / "big.png"
    file.write_bytes(encoded(photo(200, 200), "PNG"))
    assert_image_error(processor, file, "big.png", "over the 1,000-byte limit")
    assert_image_error(processor, "A" * 4000, "over the 1,000-byte limit")


def test_bad_base64_and_data_url(processor: PillowImageProcessor) -> None:
    assert_image_error(processor, "data:image/png,rawtext", "not a base64 data: URL")
    assert_image_error(processor, "data:image/png;base64,@@@@", "not valid base64")


def test_bad_settings_are_configuration_errors() -> None:
    from ollama_nb.domain import ConfigurationError

    with pytest.raises(ConfigurationError, match="format 'GIF'"):
        ImageSettings(format="GIF")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max side 4"):
        ImageSettings(max_side=4)


class _ImageServer(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        if self.path == "/missing.png":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def image_url() -> Iterator[str]:
    _ImageServer.body = encoded(photo(640, 480), "JPEG")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ImageServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_remote_urls_only_when_enabled(image_url: str) -> None:
    off = PillowImageProcessor(ImageSettings())
    assert_image_error(
        off, f"{image_url}/cat.jpg", "remote URLs are not fetched", "image_fetch_remote=true"
    )
    on = PillowImageProcessor(ImageSettings(allow_remote=True))
    prepared = on.prepare(f"{image_url}/cat.jpg")
    assert (prepared.width, prepared.height) == (640, 480)
    assert_image_error(on, f"{image_url}/missing.png", "HTTP 404")
    capped = PillowImageProcessor(ImageSettings(allow_remote=True, remote_max_bytes=100))
    assert_image_error(capped, f"{image_url}/cat.jpg", "download limit")
