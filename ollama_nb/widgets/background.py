"""Work a panel runs on the runtime's background loop, and how it all stops.

Widget callbacks run on the kernel's thread and must return at once, so a
panel submits coroutines to the shared loop and keeps their futures here.
``close()`` cancels every one and waits (briefly) for them to unwind, so a
closed panel leaves no task on the loop and no thread behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..runtime import Runtime

T = TypeVar("T")
#: How long ``close()`` waits for a cancelled task to finish unwinding.
UNWIND_S = 5.0


class PanelClosedError(RuntimeError):
    """Raised when work is submitted to a panel that was closed."""


class Background:
    """The futures of one panel's coroutines on the runtime's loop."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._running: dict[concurrent.futures.Future[Any], threading.Event] = {}
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coro`` on the loop; its failures are the coroutine's own business."""
        with self._lock:
            if self._closed:
                coro.close()
                raise PanelClosedError("This panel was closed; open a new one.")
        finished = threading.Event()

        async def guarded() -> T:
            try:
                return await coro
            finally:
                finished.set()

        future = self.runtime.loop.submit(guarded())
        with self._lock:
            self._running[future] = finished
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        if future.cancelled():
            return  # close() or a Stop button still waits for the task to unwind
        with self._lock:
            self._running.pop(future, None)

    @property
    def active(self) -> int:
        """Coroutines not finished yet (cancelled ones count until they have unwound)."""
        with self._lock:
            return sum(1 for done in self._running.values() if not done.is_set())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            running = list(self._running.items())
            self._running.clear()
        for future, _ in running:
            future.cancel()
        if self.runtime.loop.in_loop_thread():
            return  # waiting here would block the very loop that must unwind them
        for _, finished in running:
            finished.wait(UNWIND_S)


async def in_thread(work: Callable[[], T], name: str = "ollama_nb-panel-work") -> T:
    """Run blocking ``work`` (starting a server, probing hardware) in its own short-lived thread.

    Not the loop's default executor: its idle threads would outlive the panel.
    """
    loop = asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, error: BaseException | None) -> None:
        if result.done():
            return
        if error is not None:
            result.set_exception(error)
        else:
            result.set_result(value)  # type: ignore[arg-type]

    def run() -> None:
        value: T | None = None
        error: BaseException | None = None
        try:
            value = work()
        except BaseException as exc:  # handed to the awaiting coroutine
            error = exc
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:  # the loop was stopped meanwhile: nobody is waiting
            return

    threading.Thread(target=run, name=name, daemon=True).start()
    return await result
