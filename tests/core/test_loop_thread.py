"""The one cancel bridge: every surface's interrupt cancels the task and waits for it to unwind."""

from __future__ import annotations

import _thread
import asyncio
import threading
from collections.abc import AsyncIterator, Generator, Iterator

import pytest

from ollama_nb.infrastructure.loop_thread import LoopThread


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
