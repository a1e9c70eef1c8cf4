"""Helpers for the stand-in tests (the fixtures come from ``ollama_nb.testing.pytest_plugin``)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from ollama_nb.testing import StandinHandle


def image_b64(fmt: str, width: int, height: int) -> str:
    """A real image of the given format and size, base64-encoded as Ollama expects."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="session")
def jpeg_1024x768() -> str:
    """A 1024x768 JPEG in base64."""
    return image_b64("JPEG", 1024, 768)


@pytest.fixture(scope="session")
def png_640x480() -> str:
    """A 640x480 PNG in base64."""
    return image_b64("PNG", 640, 480)


@pytest.fixture(scope="session")
def _session_http(_ollama_standin_session: StandinHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=_ollama_standin_session.url, timeout=10) as c:
        yield c


@pytest.fixture
def client(ollama_standin: StandinHandle, _session_http: httpx.Client) -> httpx.Client:
    """A pooled httpx client on the shared stand-in, which was just reset."""
    return _session_http
