"""Running a batch on the background loop while the caller watches, and stopping it cleanly.

The batch itself always runs on the runtime's background loop. A plain call
blocks the calling thread (a notebook cell, even one whose thread runs the
kernel's own event loop) and polls for progress; ``await``-ing the ``a``-twin
keeps an async cell's loop free. Either way an interrupt (the stop button,
Ctrl-C) cancels the in-flight requests, waits for them to unwind, and reports
"interrupted" so the caller can hand back everything that finished.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ..domain import InvalidInputError
from ..infrastructure.loop_thread import CANCEL_GRACE_S
from ..runtime import Runtime

#: How often the caller refreshes the progress bar while it waits.
POLL_S = 0.2


def _guarded(
    work: Coroutine[Any, Any, None], finished: threading.Event
) -> Coroutine[Any, Any, None]:
    async def guarded() -> None:
        try:
            await work
        finally:
            finished.set()

    return guarded()


def run_blocking(
    runtime: Runtime, work: Coroutine[Any, Any, None], poll: Callable[[], None]
) -> bool:
    """Run ``work`` to the end; True when the user interrupted it."""
    if runtime.loop.in_loop_thread():
        work.close()
        raise InvalidInputError(
            "A blocking batch cannot run on ollama_nb's own event loop.",
            hint="Await the async form instead: `await df.ollama.achat(...)`.",
        )
    finished = threading.Event()
    future = runtime.loop.submit(_guarded(work, finished))
    try:
        while True:
            try:
                future.result(timeout=POLL_S)
                return False
            except concurrent.futures.TimeoutError:
                poll()
    except KeyboardInterrupt:
        future.cancel()
        finished.wait(CANCEL_GRACE_S)
        return True
    finally:
        poll()


async def run_awaiting(
    runtime: Runtime, work: Coroutine[Any, Any, None], poll: Callable[[], None]
) -> bool:
    """``run_blocking`` for async cells: the calling loop stays free while rows run."""
    finished = threading.Event()
    guarded = _guarded(work, finished)
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if runtime.loop.in_loop_thread():  # already on the background loop: just await it
        try:
            await guarded
            return False
        finally:
            poll()
    assert running is not None
    future = runtime.loop.submit(guarded)
    waiting = asyncio.wrap_future(future)
    try:
        while not waiting.done():
            await asyncio.wait({waiting}, timeout=POLL_S)
            poll()
        waiting.result()
        return False
    except (KeyboardInterrupt, asyncio.CancelledError) as stop:
        future.cancel()
        await asyncio.to_thread(finished.wait, CANCEL_GRACE_S)
        if isinstance(stop, asyncio.CancelledError):
            raise
        return True
    finally:
        poll()
