"""Work a panel runs on the runtime's background loop, and how it all stops.

Widget callbacks run on the kernel's thread and must return at once, so a
panel submits coroutines to the shared loop and keeps their futures here.
``close()`` cancels every one and waits (briefly, ``CANCEL_GRACE_S``) for
them to unwind through the loop's one cancel bridge (``Running``), and
joins the few short-lived threads blocking work needed, so a closed panel
leaves no task on the loop and no thread behind. A coroutine that fails
unexpectedly is reported through ``on_error`` (the panel's banner), never lost.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..infrastructure.loop_thread import CANCEL_GRACE_S, Running
from ..runtime import Runtime

T = TypeVar("T")


class PanelClosedError(RuntimeError):
    """Raised when work is submitted to a panel that was closed."""


class Background:
    """The futures of one panel's coroutines on the runtime's loop, and its worker threads."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.on_error: Callable[[BaseException], None] | None = None
        self._running: dict[concurrent.futures.Future[Any], Running[Any]] = {}
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coro`` on the loop."""
        with self._lock:
            if self._closed:
                coro.close()
                raise PanelClosedError("This panel was closed; open a new one.")
        running = self.runtime.loop.start(coro)
        with self._lock:
            self._running[running.future] = running
        running.future.add_done_callback(self._settled)
        return running.future

    def _settled(self, future: concurrent.futures.Future[Any]) -> None:
        if future.cancelled():
            return  # close() or a Stop button still waits for the task to unwind
        with self._lock:
            self._running.pop(future, None)
        error = future.exception()
        if error is not None and self.on_error is not None:
            self.on_error(error)

    @property
    def active(self) -> int:
        """Coroutines and worker threads not finished yet."""
        with self._lock:
            tasks = sum(1 for running in self._running.values() if not running.unwound)
            return tasks + sum(1 for t in self._threads if t.is_alive())

    async def in_thread(self, work: Callable[[], T]) -> T:
        """Run blocking ``work`` (starting a server, reading the store) in a short-lived thread.

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
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name="ollama_nb-panel-work", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return await result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            running = list(self._running.values())
            self._running.clear()
        for task in running:
            task.cancel()
        if self.runtime.loop.in_loop_thread():
            return  # waiting here would block the very loop that must unwind them
        for task in running:
            task.wait_unwound(CANCEL_GRACE_S)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(CANCEL_GRACE_S)
