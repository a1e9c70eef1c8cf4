"""Running a batch on the background loop while the caller watches, and stopping it cleanly.

The batch always runs on the runtime's background loop through the one bridge
(``LoopThread.run``/``arun``): a plain call blocks the calling thread and
refreshes the progress bar; ``await``-ing the ``a``-twin keeps an async cell's
loop free. An interrupt (the stop button, Ctrl-C) cancels the in-flight
requests and waits for them to unwind; here it becomes "interrupted" so the
caller hands back every row that finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..domain import InvalidInputError
from ..infrastructure.loop_thread import LoopThread
from .progress import Progress

#: (rows finished, rows failed, tokens generated) as the progress bar shows them.
Counts = Callable[[], tuple[int, int, int]]


@dataclass(frozen=True, slots=True)
class Ended:
    """How a run ended: stopped by the user or not, and how long it took."""

    interrupted: bool
    wall_s: float


class _Watch:
    """The progress bar and the clock around one run; only the caller's thread touches the bar."""

    def __init__(self, bar: Progress, counts: Counts) -> None:
        self._bar = bar
        self._counts = counts
        self._started = time.monotonic()
        self.interrupted = False

    def poll(self) -> None:
        self._bar.update(*self._counts())

    def close(self) -> Ended:
        self.poll()
        self._bar.close()
        return Ended(self.interrupted, time.monotonic() - self._started)


def run_blocking(
    loop: LoopThread, work: Coroutine[Any, Any, None], bar: Progress, counts: Counts
) -> Ended:
    """Run ``work`` to the end (or to Ctrl-C), refreshing ``bar`` meanwhile."""
    if loop.in_loop_thread():
        work.close()
        bar.close()
        raise InvalidInputError(
            "A blocking batch cannot run on ollama_nb's own event loop.",
            hint="Await the async form instead: `await df.ollama.achat(...)`.",
        )
    watch = _Watch(bar, counts)
    try:
        loop.run(work, poll=watch.poll)
    except KeyboardInterrupt:
        watch.interrupted = True
    finally:
        ended = watch.close()
    return ended


async def run_awaiting(
    loop: LoopThread, work: Coroutine[Any, Any, None], bar: Progress, counts: Counts
) -> Ended:
    """``run_blocking`` for async cells: the calling loop stays free while rows run."""
    watch = _Watch(bar, counts)
    try:
        await loop.arun(work, poll=watch.poll)
    except KeyboardInterrupt:
        watch.interrupted = True
    finally:
        ended = watch.close()
    return ended
