"""Ownership of the server survives clock steps and refuses impostors.

The server is real (the fake ``ollama`` on PATH runs the stand-in); the foreign
processes are real child processes. A wall-clock step is simulated where
wall time comes from: ``time.time``, psutil's boot time and its per-process
create time (derived from boot time on Linux) all jump by an hour.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ollama_nb.ollama_process import NotOwnedError
from ollama_nb.ollama_process.identity import ProcessStamp, judge, stamp_of
from ollama_nb.ollama_process.process import UnclearOwnerError

from .conftest import Setup

STEP_S = 3600.0


@pytest.fixture
def foreign() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not ours (started the way any program starts a child).

    It says when it runs: right after ``exec`` Linux briefly shows an empty command
    line, and on a busy machine a test copying the command line could copy that.
    """
    proc = _running_child()
    try:
        yield proc
    finally:
        _end(proc)


#: A child that says when it runs, so its command line is its own, not exec's empty one.
_ANNOUNCE = "import time; print('up', flush=True); time.sleep(300)"
_COMMAND = (sys.executable, "-c", _ANNOUNCE)


def _running_child(*, start_new_session: bool = False) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(_COMMAND, stdout=subprocess.PIPE, start_new_session=start_new_session)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    return proc


def _end(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _step_wall_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    real_time, real_boot = time.time, psutil.boot_time
    real_create = psutil.Process.create_time
    monkeypatch.setattr(time, "time", lambda: real_time() + seconds)
    monkeypatch.setattr(psutil, "boot_time", lambda: real_boot() + seconds)
    monkeypatch.setattr(psutil.Process, "create_time", lambda self: real_create(self) + seconds)


def _write_state(setup: Setup, record: dict[str, object]) -> Path:
    folder = setup.data_dir / "server"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{setup.port}.json"
    base: dict[str, object] = {
        "host": f"http://127.0.0.1:{setup.port}",
        "binary": "ollama",
        "env": {},
        "profile": None,
        "started_at": 1.0,
        "log": "x",
    }
    path.write_text(json.dumps({**base, **record}))
    return path


def test_a_clock_step_does_not_make_our_server_foreign(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup.manager.start()
    state = setup.process().read_state()
    assert state is not None
    pid = state.pid
    before = psutil.Process(pid).create_time()

    _step_wall_clock(monkeypatch, STEP_S)
    assert psutil.Process(pid).create_time() == before + STEP_S  # psutil's view moved

    status = str(setup.manager.status())
    assert "Owner: ollama_nb, started by this kernel" in status
    assert setup.manager.start().outcome.action == "adopted"
    again = setup.process().read_state()
    assert again is not None  # the record was not thrown away
    assert [c.pid for c in again.clients] == [psutil.Process().pid]  # still us, once

    stopped = setup.manager.stop()
    assert stopped.outcome.action == "stopped"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_forged_state_naming_a_foreign_process_is_never_signalled(
    setup: Setup, foreign: subprocess.Popen[bytes]
) -> None:
    stamp = stamp_of(foreign.pid)
    assert stamp is not None
    # Everything a forger can copy: pid, exact start stamp, and even its command line.
    for command in (["ollama", "serve"], psutil.Process(foreign.pid).cmdline()):
        path = _write_state(
            setup,
            {"pid": foreign.pid, "start": stamp.start, "boot": stamp.boot, "command": command},
        )
        assert setup.manager.stop().outcome.action == "not-running"
        assert foreign.poll() is None  # still running: never signalled
        assert not path.exists()  # a record that is provably not ours is removed

    _write_state(
        setup, {"pid": foreign.pid, "start": stamp.start, "boot": stamp.boot, "command": ["x"]}
    )
    report = setup.manager.start()
    assert report.outcome.action == "started"  # our own server, beside the foreign process
    assert "not the server ollama_nb launched" in str(report)
    assert foreign.poll() is None


def test_a_record_we_cannot_judge_is_kept_and_explained(
    setup: Setup, foreign: subprocess.Popen[bytes]
) -> None:
    """An old-format record (wall-clock ``create_time`` only) naming a live process."""
    path = _write_state(
        setup, {"pid": foreign.pid, "create_time": psutil.Process(foreign.pid).create_time()}
    )
    with pytest.raises(UnclearOwnerError, match="cannot tell whether it is the server") as caught:
        setup.manager.stop()
    assert isinstance(caught.value, NotOwnedError)
    assert str(path) in str(caught.value) and "delete the file if it is not" in str(caught.value)
    assert foreign.poll() is None
    assert path.exists()

    status = str(setup.manager.status())
    assert f"Keeping {path}" in status
    assert len([line for line in status.splitlines() if "Keeping" in line]) == 1

    with pytest.raises(UnclearOwnerError):
        setup.manager.start()  # nothing answers: starting would overwrite the record
    assert path.exists() and foreign.poll() is None


def test_judge_reads_clock_independent_stamps(foreign: subprocess.Popen[bytes]) -> None:
    stamp = stamp_of(foreign.pid)
    assert stamp is not None and stamp == stamp_of(foreign.pid)
    command = tuple(psutil.Process(foreign.pid).cmdline())
    verdict, why = judge(foreign.pid, stamp, command)
    assert verdict == "other" and "session leader" in why  # right program, not started by us
    leader = _running_child(start_new_session=True)
    try:
        leader_stamp = stamp_of(leader.pid)
        assert leader_stamp is not None
        assert judge(leader.pid, leader_stamp, _COMMAND) == ("ours", "")
        earlier = ProcessStamp(leader_stamp.start - 1.0, leader_stamp.boot)
        assert judge(leader.pid, earlier, _COMMAND)[0] == "gone"  # a reused pid
    finally:
        _end(leader)
    assert judge(leader.pid, leader_stamp, _COMMAND)[0] == "gone"
