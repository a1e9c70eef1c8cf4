"""One retry rule for every batch: chat/generate rows and embedding groups."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from ollama_nb.batch.retries import RowFailedError, RowRetries
from ollama_nb.domain import (
    InvalidInputError,
    OllamaNbError,
    RequestTimeoutError,
    ServerUnavailableError,
)


def failing(*errors: OllamaNbError) -> tuple[list[int], Callable[[], Coroutine[Any, Any, str]]]:
    """An attempt that raises ``errors`` in turn, then answers; ``calls`` counts the tries."""
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "answer"

    return calls, attempt


async def test_transient_errors_are_retried_until_an_answer() -> None:
    calls, attempt = failing(RequestTimeoutError("slow"), RequestTimeoutError("slow"))
    assert await RowRetries(2, 0.0).send(attempt, stopping=lambda: False) == "answer"
    assert len(calls) == 3


async def test_the_last_error_says_how_often_it_was_retried() -> None:
    calls, attempt = failing(*[RequestTimeoutError("slow")] * 3)
    with pytest.raises(RowFailedError, match=r"^slow \(after 2 retries\)$") as failed:
        await RowRetries(2, 0.0).send(attempt, stopping=lambda: False)
    assert len(calls) == 3 and not failed.value.fatal


async def test_a_bad_row_fails_at_once_and_a_dead_server_stops_the_batch() -> None:
    calls, attempt = failing(InvalidInputError("empty prompt"))
    with pytest.raises(RowFailedError) as bad_row:
        await RowRetries(5, 0.0).send(attempt, stopping=lambda: False)
    assert len(calls) == 1 and not bad_row.value.fatal
    calls, attempt = failing(ServerUnavailableError("http://x", "refused"))
    with pytest.raises(RowFailedError) as gone:
        await RowRetries(5, 0.0).send(attempt, stopping=lambda: False)
    assert len(calls) == 1 and gone.value.fatal


async def test_no_retry_once_the_batch_is_stopping() -> None:
    calls, attempt = failing(RequestTimeoutError("slow"))
    with pytest.raises(RowFailedError):
        await RowRetries(5, 0.0).send(attempt, stopping=lambda: True)
    assert len(calls) == 1
