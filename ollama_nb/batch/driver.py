"""Running a batch on the background loop while the caller watches, and stopping it cleanly.

The batch always runs on the runtime's background loop through the one bridge
(``LoopThread.run``/``arun``): a plain call blocks the calling thread and
refreshes the progress bar; ``await``-ing the ``a``-twin keeps an async cell's
loop free. An interrupt (the stop button, Ctrl-C) cancels the in-flight
requests and waits for them to unwind; here it becomes "interrupted" so the
caller hands back every row that finished.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from ..domain import InvalidInputError
from ..infrastructure.loop_thread import LoopThread


def run_blocking(
    loop: LoopThread, work: Coroutine[Any, Any, None], poll: Callable[[], None]
) -> bool:
    """Run ``work`` to the end; True when the user interrupted it."""
    if loop.in_loop_thread():
        work.close()
        raise InvalidInputError(
            "A blocking batch cannot run on ollama_nb's own event loop.",
            hint="Await the async form instead: `await df.ollama.achat(...)`.",
        )
    try:
        loop.run(work, poll=poll)
        return False
    except KeyboardInterrupt:
        return True
    finally:
        poll()


async def run_awaiting(
    loop: LoopThread, work: Coroutine[Any, Any, None], poll: Callable[[], None]
) -> bool:
    """``run_blocking`` for async cells: the calling loop stays free while rows run."""
    try:
        await loop.arun(work, poll=poll)
        return False
    except KeyboardInterrupt:
        return True
    finally:
        poll()
