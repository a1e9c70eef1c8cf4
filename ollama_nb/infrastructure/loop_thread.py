"""One background event loop per process, and bridges to it.

ipykernel already runs an asyncio loop, and magics are synchronous: they cannot
``await``. Instead of patching the kernel's loop (nest_asyncio), the async core
lives on its own loop in a daemon thread. Synchronous callers block on a
``concurrent.futures.Future``; async callers in a cell await a wrapped future.
An interrupt (Ctrl-C, the stop button) cancels the submitted task and waits for
it to unwind, so connections go back to the pool before the cell ends.

While a synchronous caller waits, Ctrl-C is latched, not raised where it lands.
Python raises ``KeyboardInterrupt`` between any two bytecodes of the main thread,
including inside ``concurrent.futures.wait`` right after it has taken a future's
lock and before the ``with`` that would release it. The loop thread then blocks
forever on that lock when it finishes the future: every thread asleep, the
kernel hung by the very Ctrl-C meant to stop a batch. So the waits below run
under ``_interrupts_latched``, which notes the press and lets the wait raise it
at a point where it holds nothing (the way ``asyncio.Runner`` turns SIGINT into
a cancellation).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from types import FrameType
from typing import Any, Generic, TypeVar

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

    def start(self, coro: Coroutine[Any, Any, T]) -> Running[T]:
        """Start ``coro`` on the loop; the handle can cancel it and wait until it has unwound."""
        unwound = threading.Event()

        async def guarded() -> T:
            try:
                return await coro
            finally:
                unwound.set()

        return Running(self.submit(guarded()), unwound)

    def run(self, coro: Coroutine[Any, Any, T], *, poll: Callable[[], None] | None = None) -> T:
        """Run ``coro`` on the loop and wait, calling ``poll`` now and then (a progress bar).

        Ctrl-C cancels it, waits for it to unwind (so it keeps what it finished),
        then re-raises the ``KeyboardInterrupt``.
        """
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("LoopThread.run called from its own loop; await instead")
        with _interrupts_latched() as pressed:
            running = self.start(coro)
            try:
                while True:
                    # Short waits so a latched Ctrl-C is acted on within one poll.
                    # ``wait``, not ``result(timeout=...)``: the work's own TimeoutError
                    # (a read timeout) must be raised, not mistaken for "not done yet".
                    done, _ = concurrent.futures.wait([running.future], timeout=_POLL_S)
                    if pressed.is_set():
                        raise KeyboardInterrupt
                    if done:
                        return running.future.result()
                    if poll is not None:
                        poll()
            except KeyboardInterrupt:  # latched, or raised by a handler other than Python's own
                running.stop()
                raise

    async def arun(
        self, coro: Coroutine[Any, Any, T], *, poll: Callable[[], None] | None = None
    ) -> T:
        """``run`` for another event loop (an async notebook cell), which stays free meanwhile.

        Cancelling the awaiting task (or Ctrl-C) cancels ``coro`` and waits for it to unwind.
        """
        try:
            running_loop = asyncio.get_running_loop()
        except RuntimeError:
            running_loop = None
        if running_loop is not None and running_loop is self._loop:
            return await coro
        running = self.start(coro)
        waiting = asyncio.wrap_future(running.future)
        try:
            while poll is not None:
                done, _ = await asyncio.wait({waiting}, timeout=_POLL_S)
                if done:
                    break
                poll()
            return await waiting
        except (KeyboardInterrupt, asyncio.CancelledError):
            running.cancel()
            await asyncio.to_thread(running.wait_unwound)
            raise

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

        running = self.start(pump())
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
            running.stop()
            raise
        running.future.result()

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


class Running(Generic[T]):
    """A coroutine started on the loop: its future, and whether it has finished unwinding.

    Cancelling a ``run_coroutine_threadsafe`` future only asks the task to stop;
    the task still runs its ``finally`` blocks (recording the partial answer,
    freeing a gate slot, closing the connection) afterwards. Whoever cancels
    waits for that, so the caller sees everything the task kept.
    """

    __slots__ = ("_unwound", "future")

    def __init__(self, future: concurrent.futures.Future[T], unwound: threading.Event) -> None:
        self.future = future
        self._unwound = unwound

    @property
    def unwound(self) -> bool:
        return self._unwound.is_set()

    def cancel(self) -> None:
        self.future.cancel()

    def wait_unwound(self, timeout: float = CANCEL_GRACE_S) -> bool:
        return self._unwound.wait(timeout)

    def stop(self, timeout: float = CANCEL_GRACE_S) -> None:
        """Cancel and wait (at most ``timeout``) for the task to unwind.

        A second Ctrl-C meanwhile is latched: raised inside the future's or the
        event's lock, it would leave that lock held and the loop thread stuck.
        """
        with _interrupts_latched():
            self.cancel()
            self.wait_unwound(timeout)


class _Latch:
    """A SIGINT handler that only remembers the press; safe between any two bytecodes."""

    __slots__ = ("_pressed",)

    def __init__(self) -> None:
        self._pressed = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self._pressed = True

    def is_set(self) -> bool:
        return self._pressed


@contextlib.contextmanager
def _interrupts_latched() -> Iterator[_Latch]:
    """Within the block, Ctrl-C sets the latch instead of raising (main thread only).

    Only Python's default handler is replaced, as ``asyncio.Runner`` does: a handler
    someone else installed (a debugger, a server) keeps its behaviour. Elsewhere
    than the main thread there is nothing to latch: signals are handled there only.
    """
    latch = _Latch()
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield latch
        return
    previous = signal.getsignal(signal.SIGINT)
    try:
        # Installed inside the ``try``: a Ctrl-C landing just after the install must not
        # leave this latch behind, where every later press would be swallowed by it.
        signal.signal(signal.SIGINT, latch)
        yield latch
    finally:
        signal.signal(signal.SIGINT, previous)


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:  # closing a finished generator must not mask the real outcome
        return
