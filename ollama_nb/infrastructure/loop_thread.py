"""One background event loop per process, and bridges to it.

ipykernel already runs an asyncio loop, and magics are synchronous: they cannot
``await``. Instead of patching the kernel's loop (nest_asyncio), the async core
lives on its own loop in a daemon thread. Synchronous callers block on a
``concurrent.futures.Future``; async callers in a cell await a wrapped future.
An interrupt (Ctrl-C, the stop button) cancels the submitted task and waits for
it to unwind, so connections go back to the pool before the cell ends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()
#: How long an interrupted task may take to unwind before we give up waiting.
CANCEL_GRACE_S = 5.0
_POLL_S = 0.1


class LoopThread:
    def __init__(self, name: str = "ollama_nb-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running background loop, started on first use."""
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                ready = threading.Event()
                loop = asyncio.new_event_loop()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name=self._name, daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait; Ctrl-C cancels it cleanly and re-raises."""
        if self.in_loop_thread():
            raise RuntimeError("LoopThread.run called from its own loop; await instead")
        finished = threading.Event()

        async def guarded() -> T:
            try:
                return await coro
            finally:
                finished.set()

        future = self.submit(guarded())
        try:
            while True:
                # Short waits so an interrupt is seen even when the signal lands in
                # another thread (a blocked lock wait is not always woken by it).
                try:
                    return future.result(timeout=_POLL_S)
                except concurrent.futures.TimeoutError:
                    continue
        except KeyboardInterrupt:
            future.cancel()
            finished.wait(CANCEL_GRACE_S)
            raise

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` from another event loop (an async notebook cell)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self._loop:
            return await coro
        return await asyncio.wrap_future(self.submit(coro))

    def iterate(self, source: AsyncIterator[T]) -> Iterator[T]:
        """Consume an async iterator from synchronous code, item by item."""
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()

        async def pump() -> None:
            try:
                async for item in source:
                    items.put(item)
            except BaseException as exc:
                items.put(_Failure(exc))
                if isinstance(exc, asyncio.CancelledError):
                    raise
            finally:
                closer = getattr(source, "aclose", None)
                if closer is not None:
                    await _quietly(closer())
                items.put(_DONE)

        future = self.submit(pump())
        try:
            while True:
                try:
                    item = items.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if item is _DONE:
                    break
                if isinstance(item, _Failure):
                    if isinstance(item.error, asyncio.CancelledError):
                        raise KeyboardInterrupt
                    raise item.error
                yield item
        except (KeyboardInterrupt, GeneratorExit):
            future.cancel()
            _drain_until_done(items, CANCEL_GRACE_S)
            raise
        future.result()

    def stop(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None and thread.is_alive():
            if threading.current_thread() is not thread:
                # Work handed to asyncio.to_thread (tool calls, image decoding) ran on the
                # loop's default executor: join its threads rather than leave them behind.
                done = asyncio.run_coroutine_threadsafe(loop.shutdown_default_executor(), loop)
                with contextlib.suppress(Exception):
                    done.result(timeout=5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not thread.is_alive():
                loop.close()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:  # closing a finished generator must not mask the real outcome
        return


def _drain_until_done(items: queue.SimpleQueue[Any], timeout: float) -> None:
    try:
        while items.get(timeout=timeout) is not _DONE:
            pass
    except queue.Empty:
        return
