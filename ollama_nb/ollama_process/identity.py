"""Which process a pid is, in terms a wall-clock step cannot change.

A pid alone is recycled; psutil's ``create_time()`` on Linux is boot time plus
the start tick, and boot time is derived from the wall clock, so NTP or a VM
resume moves it and our own server looked foreign (and a state file was
deleted while the server ran on). Here a process is known by:

- its start stamp: on Linux the ``starttime`` field of ``/proc/<pid>/stat``
  (clock ticks since boot, fixed for the life of the process) together with
  the kernel's boot id; elsewhere psutil's start time, which on macOS and the
  BSDs is the start time the kernel recorded (``p_starttime``), read as is and
  never recomputed from the current clock;
- its command line, compared with the one we launched, and (on POSIX) being
  the leader of its own session, as we start servers; so a state file naming
  some other live program (forged, or copied between machines) never gets
  that program signalled.

Stamps are compared with a tolerance (``START_TOLERANCE``): a tick on Linux,
a millisecond elsewhere.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

#: How far two readings of one process's start stamp may differ.
START_TOLERANCE = 0.011 if sys.platform.startswith("linux") else 0.001

Verdict = Literal["ours", "gone", "other", "unknown"]


class CannotJudge(Exception):
    """The process exists but the OS will not tell us enough to know whose it is."""


@dataclass(frozen=True, slots=True)
class ProcessStamp:
    """A process's start, independent of the wall clock: seconds since boot + boot id on Linux."""

    start: float
    boot: str = ""

    def same_as(self, other: ProcessStamp) -> bool:
        return self.boot == other.boot and abs(self.start - other.start) <= START_TOLERANCE


def stamp_of(pid: int) -> ProcessStamp | None:
    """The start stamp of ``pid``; None when it no longer runs (or is a zombie).

    Raises ``CannotJudge`` when the process exists but may not be inspected.
    """
    if sys.platform.startswith("linux"):
        return _linux_stamp(pid)
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return ProcessStamp(proc.create_time())
    except psutil.NoSuchProcess:
        return None
    except psutil.Error as exc:
        raise CannotJudge(f"{type(exc).__name__}: {exc}") from None


def command_of(pid: int) -> tuple[str, ...]:
    """The command line of ``pid``; () once it has exited.

    Raises ``CannotJudge`` if it cannot be read. Right after an ``exec`` Linux
    briefly shows an empty command line, so an empty one is read again a few
    times before it counts as unreadable.
    """
    for _ in range(20):
        try:
            command = tuple(psutil.Process(pid).cmdline())
        except psutil.NoSuchProcess:
            return ()
        except psutil.Error as exc:
            raise CannotJudge(f"{type(exc).__name__}: {exc}") from None
        if command:
            return command
        time.sleep(0.01)
    if stamp_of(pid) is None:
        return ()
    raise CannotJudge("its command line is empty (a kernel thread, or still starting)")


def judge(pid: int, stamp: ProcessStamp | None, command: tuple[str, ...]) -> tuple[Verdict, str]:
    """Whether ``pid`` is still the process recorded as (``stamp``, ``command``).

    ``ours``: same start, same command line. ``gone``: exited, or the pid now
    belongs to a process started at another time. ``other``: started then, but
    running some other program. ``unknown``: alive, and the record or the OS
    does not let us tell (an old state file without a stamp, access denied);
    the caller must neither signal it nor forget it. The text says why.
    """
    try:
        now = stamp_of(pid)
    except CannotJudge as exc:
        return "unknown", f"process {pid} cannot be inspected ({exc})"
    if now is None:
        return "gone", f"process {pid} has exited"
    if stamp is None or not command:
        return "unknown", f"the record of process {pid} predates start-time checks"
    if not now.same_as(stamp):
        return "gone", f"process {pid} is a newer process that reused the pid"
    try:
        running = command_of(pid)
    except CannotJudge as exc:
        return "unknown", f"the command line of process {pid} cannot be read ({exc})"
    if not running:
        return "gone", f"process {pid} has exited"
    if running != command:
        shown = " ".join(running)[:120]
        return "other", f"process {pid} runs `{shown}`, not the server ollama_nb launched"
    if hasattr(os, "getsid"):
        try:
            leader = os.getsid(pid) == pid
        except ProcessLookupError:
            return "gone", f"process {pid} has exited"
        except OSError as exc:
            return "unknown", f"the session of process {pid} cannot be read ({exc.strerror})"
        if not leader:
            return "other", f"process {pid} is not the session leader ollama_nb starts servers as"
    return "ours", ""


def _linux_stamp(pid: int) -> ProcessStamp | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError as exc:
        raise CannotJudge(exc.strerror or str(exc)) from None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    fields = text.rpartition(")")[2].split()
    if fields and fields[0] == "Z":
        return None  # a zombie: it has exited, only its exit status waits to be collected
    if len(fields) < 20:
        raise CannotJudge(f"/proc/{pid}/stat has an unexpected format")
    ticks = int(fields[19])  # field 22 of stat(5): starttime, in clock ticks since boot
    return ProcessStamp(ticks / _CLOCK_TICKS, _boot_id())


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@functools.cache
def _boot_id() -> str:
    """This boot's id: start ticks restart at zero after a reboot, the id does not repeat."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""
