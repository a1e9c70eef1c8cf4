"""How a batch retries one row (or one group of rows), shared by chat/generate and embed batches.

A row's request is tried again for errors a second try can fix (a timeout, a
busy server, a cut stream), with jittered backoff. Errors about the row itself
fail it at once; errors every row would hit (the server is gone, the model is
not installed) fail it at once *and* tell the caller to stop the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..domain import (
    BadRequestError,
    HostNotAllowedError,
    InvalidInputError,
    ModelNotFoundError,
    OllamaNbError,
    ServerUnavailableError,
)
from ..infrastructure.resilience import RetryPolicy

T = TypeVar("T")

#: Errors that no retry of this row can fix, and that every other row would hit too.
FATAL_ERRORS: tuple[type[OllamaNbError], ...] = (
    ServerUnavailableError,
    ModelNotFoundError,
    HostNotAllowedError,
)
#: Errors about this row's content: retrying sends the same bad request.
PERMANENT_ERRORS: tuple[type[OllamaNbError], ...] = (InvalidInputError, BadRequestError)


class RowFailedError(Exception):
    """The row's last error, after ``retries`` retries; ``fatal`` means stop the batch."""

    def __init__(self, error: OllamaNbError, retries: int) -> None:
        self.error = error
        self.retries = retries
        self.fatal = isinstance(error, FATAL_ERRORS)
        text = str(error)
        super().__init__(f"{text} (after {retries} retries)" if retries else text)


class RowRetries:
    """Retry up to ``retries`` times after the first try, backing off from ``backoff_s``."""

    def __init__(self, retries: int, backoff_s: float) -> None:
        self.retries = retries
        self._policy = RetryPolicy(retries, backoff_s, max(backoff_s * 16, 0.01))

    async def send(self, attempt: Callable[[], Awaitable[T]], *, stopping: Callable[[], bool]) -> T:
        """``attempt()``'s result, or ``RowFailedError``; no retry once ``stopping()`` is true."""
        retry = 0
        while True:
            try:
                return await attempt()
            except (*FATAL_ERRORS, *PERMANENT_ERRORS) as exc:
                raise RowFailedError(exc, retry) from exc
            except OllamaNbError as exc:
                if retry >= self.retries or stopping():
                    raise RowFailedError(exc, retry) from exc
            await asyncio.sleep(self._policy.delay(retry))
            retry += 1
