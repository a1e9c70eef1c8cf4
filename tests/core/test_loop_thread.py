"""The one cancel bridge: every surface's interrupt cancels the task and waits for it to unwind."""

from __future__ import annotations

import _thread
import asyncio
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from types import FrameType
from typing import Any

import pytest

from ollama_nb.infrastructure import loop_thread
from ollama_nb.infrastructure.loop_thread import LoopThread

pytestmark = pytest.mark.concurrency


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread("ollama_nb-test-loop")
    yield thread
    thread.stop()


class Forever:
    """A task that runs until cancelled and needs a loop turn to unwind (like closing a stream)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.unwound = False

    async def __call__(self) -> None:
        try:
            self.started.set()
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)
            self.unwound = True


def test_interrupt_in_run_waits_for_the_task_to_unwind(loop: LoopThread) -> None:
    work = Forever()

    def press_stop() -> None:  # Ctrl-C while the caller waits, once the task is running
        if work.started.is_set():
            _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt):
        loop.run(work(), poll=press_stop)
    assert work.unwound


async def test_cancelling_arun_waits_for_the_task_to_unwind(loop: LoopThread) -> None:
    work = Forever()
    waiting = asyncio.create_task(loop.arun(work()))
    assert await asyncio.to_thread(work.started.wait, 10)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert work.unwound


class ReleasedByPolls:
    """A task that finishes once the waiting caller has polled three times."""

    def __init__(self, loop: LoopThread) -> None:
        self._loop = loop
        self._release = asyncio.Event()
        self.polls = 0

    async def work(self) -> str:
        await self._release.wait()
        return "done"

    def poll(self) -> None:
        self.polls += 1
        if self.polls == 3:
            self._loop.loop.call_soon_threadsafe(self._release.set)


def test_run_polls_while_it_waits(loop: LoopThread) -> None:
    task = ReleasedByPolls(loop)
    assert loop.run(task.work(), poll=task.poll) == "done"
    assert task.polls >= 3


async def test_arun_polls_while_it_waits(loop: LoopThread) -> None:
    task = ReleasedByPolls(loop)
    assert await loop.arun(task.work(), poll=task.poll) == "done"
    assert task.polls >= 3


def test_closing_an_iteration_early_unwinds_its_source(loop: LoopThread) -> None:
    closed = threading.Event()

    async def numbers() -> AsyncIterator[int]:
        try:
            for n in range(1000):
                yield n
                await asyncio.sleep(0)
        finally:
            closed.set()

    items = loop.iterate(numbers())
    assert isinstance(items, Generator)
    assert next(items) == 0
    items.close()
    assert closed.is_set()


def test_a_timeout_raised_by_the_work_is_raised_not_waited_on(loop: LoopThread) -> None:
    """``TimeoutError`` from the work (a read timeout) once looked like the bridge's poll expiring.

    The caller then waited forever on a future that had already failed.
    """

    async def read_times_out() -> None:
        raise TimeoutError("the server stopped sending")

    outcome: list[BaseException] = []

    def call() -> None:
        try:
            loop.run(read_times_out())
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(timeout=30)  # a guard against the old hang, not a timing assertion
    assert not caller.is_alive(), "run() kept waiting after the work had raised"
    assert len(outcome) == 1 and isinstance(outcome[0], TimeoutError)


def _ctrl_c_from_line(first: int) -> Callable[[FrameType, str, Any], Any]:
    """A tracer pressing Ctrl-C at the ``first``-th line event in ``run`` and every one after.

    Python raises ``KeyboardInterrupt`` between bytecodes, so line events stand in
    for every place a real Ctrl-C can land, and each is tried in turn: the same
    interleavings on every run, on a loaded machine or an idle one.
    """
    seen = 0
    returned = False

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal seen, returned
        if returned:
            return None
        if event == "return" and frame.f_code is LoopThread.run.__code__:
            returned = True  # the caller's own code after ``run`` is not under test
        elif event == "line":
            seen += 1
            if seen >= first:
                signal.raise_signal(signal.SIGINT)
        return tracer

    return tracer


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_ctrl_c_landing_anywhere_in_the_wait_leaves_the_loop_usable(
    loop: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C raised inside ``concurrent.futures.wait`` once left a future's lock held.

    ``_AcquireFutures.__enter__`` takes each future's lock in a Python loop; a
    ``KeyboardInterrupt`` between the acquire and the ``with`` left it held by the
    main thread, and the loop thread blocked forever finishing that future: the
    batch-interrupt test hung under load with every thread asleep. Here Ctrl-C is
    pressed at each line event of ``run`` in turn (and, as an impatient user does,
    on every line after it, through the stop). Every time, ``run`` must raise
    ``KeyboardInterrupt`` and the loop must still run the next piece of work.
    (A press before ``run`` has started anything leaves its coroutine un-awaited:
    hence the filtered warning.)
    """
    assert threading.current_thread() is threading.main_thread()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.setattr(loop_thread, "_POLL_S", 0.0005)  # many polls, so many landing places
    assert loop.loop.is_running()  # started outside the traced region, as after first use

    async def answer() -> str:
        return "still serving"

    for first in range(1, 400):
        work = Forever()
        previous = sys.gettrace()
        interrupted = False
        sys.settrace(_ctrl_c_from_line(first))
        try:
            loop.run(work())
        except KeyboardInterrupt:
            interrupted = True
        finally:
            sys.settrace(previous)
        assert interrupted
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        probe: list[str] = []
        prober = threading.Thread(
            target=lambda into=probe: into.append(loop.submit(answer()).result()), daemon=True
        )
        prober.start()
        prober.join(timeout=30)  # a guard against the old deadlock, not a timing assertion
        assert probe == ["still serving"], f"the loop thread is stuck after Ctrl-C at line {first}"
