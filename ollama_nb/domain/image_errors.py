"""The error users see when an image cannot be sent.

Lives beside ``errors.py`` (re-exported from ``ollama_nb.domain``) so that
catching ``InvalidInputError`` still catches it: a bad image is bad input,
found before anything reaches the server.
"""

from __future__ import annotations

from .errors import InvalidInputError


class ImageError(InvalidInputError):
    """An image source could not be read, validated or encoded.

    ``source`` is the short description of what the user passed (a path, "NumPy
    array 480x640x3 uint8", "bytes (12 kB)"), so the message says which image failed
    when a cell sends several.
    """

    def __init__(self, source: str, problem: str, *, hint: str | None = None) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"Image {source}: {problem}", hint=hint)
