"""The real spawn / health / stop / adopt path, with a fake ``ollama`` running the stand-in."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import psutil
import pytest

from ollama_nb.ollama_process import (
    NotOwnedError,
    OllamaNotInstalledError,
    PortInUseError,
    RemoteHostError,
    ServerStartError,
)
from ollama_nb.ollama_process.identity import stamp_of
from ollama_nb.testing import StandinHandle

from .conftest import ROOT, Setup, free_port, make_setup, stop_recorded, write_executable


def standin_stats(port: int) -> dict[str, object]:
    data: dict[str, object] = httpx.get(f"http://127.0.0.1:{port}/_standin/stats").json()
    return data


def test_start_spawns_a_tuned_server_and_sizes_the_gate(setup: Setup) -> None:
    report = setup.manager.start()

    assert report.outcome.action == "started"
    assert "profile apple-16gb, 2 parallel slots" in str(report)
    stats = standin_stats(setup.port)
    assert stats["num_parallel"] == 2  # OLLAMA_NUM_PARALLEL reached the server
    assert stats["max_queue"] == 128  # and OLLAMA_MAX_QUEUE
    assert setup.runtime.gate.limit == 2
    state = setup.process().read_state()
    assert state is not None and state.profile == "apple-16gb"
    assert state.stamp is not None and state.stamp == stamp_of(state.pid)
    assert state.command == tuple(psutil.Process(state.pid).cmdline())  # after the launcher's exec
    assert setup.runtime.server.active_profile() == "apple-16gb"
    assert setup.runtime.server_profile() == "apple-16gb"  # what telemetry records
    assert "ollama_nb: " in Path(state.log).read_text()

    again = setup.manager.start()  # a second start in the same kernel adopts, never spawns
    assert again.outcome.action == "adopted"
    assert again.outcome.state is not None and again.outcome.state.pid == state.pid

    stopped = setup.manager.stop()
    assert stopped.outcome.action == "stopped"
    assert not psutil.pid_exists(state.pid) or psutil.Process(state.pid).status() == "zombie"
    assert setup.process().read_state() is None
    assert "not running" in str(setup.manager.status())


def test_user_override_wins_and_tune_shows_the_change(setup: Setup) -> None:
    setup.manager.start()
    setup.manager.configure(env={"OLLAMA_NUM_PARALLEL": "3"})

    report = setup.manager.tune_report()
    assert report.plan.env["OLLAMA_NUM_PARALLEL"].source == "override"
    assert report.changes_on_restart() == [("OLLAMA_NUM_PARALLEL", "2", "3")]
    assert "On restart: OLLAMA_NUM_PARALLEL 2 -> 3" in str(report)

    setup.manager.restart()
    assert standin_stats(setup.port)["num_parallel"] == 3
    assert setup.runtime.gate.limit == 3


def test_detects_a_server_it_did_not_start_and_refuses_to_stop_it(
    tmp_path: Path, fake_bin: Path, ollama_standin: StandinHandle
) -> None:
    port = int(ollama_standin.url.rsplit(":", 1)[1].strip("/"))
    made = make_setup(tmp_path / "data", port)
    try:
        report = made.manager.start()
        assert report.outcome.action == "foreign"
        assert "not started by ollama_nb" in str(report)
        assert f"(pid {psutil.Process().pid})" in report.outcome.owner  # the stand-in is in-process

        with pytest.raises(NotOwnedError, match="ollama_nb did not start it"):
            made.manager.stop()
        assert httpx.head(ollama_standin.url + "/").status_code == 200  # still alive
        assert "not started by ollama_nb" in str(made.manager.status())
    finally:
        made.runtime.close()


def test_crash_during_start_shows_the_log_tail(setup: Setup, fake_bin: Path) -> None:
    write_executable(
        fake_bin / "ollama",
        'echo "Error: listen tcp 127.0.0.1: bind: simulated failure" >&2; exit 3',
    )
    with pytest.raises(ServerStartError) as caught:
        setup.manager.start()
    message = str(caught.value)
    assert "exited with code 3" in message
    assert "bind: simulated failure" in message  # the tail of the log is in the error
    assert setup.process().read_state() is None  # nothing half-started is left recorded


def test_port_in_use_by_something_else(setup: Setup) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", setup.port))
        squatter.listen()
        with pytest.raises(PortInUseError, match=f"Port {setup.port} is taken by 'python"):
            setup.manager.start()
    assert setup.process().read_state() is None


def test_stale_state_file_is_removed_and_a_server_started(setup: Setup) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = setup.data_dir / "server"
    folder.mkdir(parents=True)
    stale = {
        "pid": dead.pid,
        "create_time": 1.0,
        "host": f"http://127.0.0.1:{setup.port}",
        "binary": "ollama",
        "env": {},
        "profile": None,
        "started_at": 1.0,
        "log": "x",
    }
    (folder / f"{setup.port}.json").write_text(json.dumps(stale))

    report = setup.manager.start()
    assert report.outcome.stale_state_removed
    assert report.outcome.action == "started"
    assert "Removed a stale record" in str(report)


def test_recycled_pid_is_not_ours(setup: Setup) -> None:
    """A state file naming a live process with another start time must not be stopped."""
    folder = setup.data_dir / "server"
    folder.mkdir(parents=True)
    me = psutil.Process()
    stamp = stamp_of(me.pid)
    assert stamp is not None
    recycled = {
        "pid": me.pid,
        "start": stamp.start - 1000,
        "boot": stamp.boot,
        "command": me.cmdline(),
        "host": "",
        "binary": "ollama",
        "env": {},
        "profile": None,
        "started_at": 1.0,
        "log": "x",
    }
    (folder / f"{setup.port}.json").write_text(json.dumps(recycled))
    outcome = setup.manager.stop().outcome
    assert outcome.action == "not-running" and outcome.stale_state_removed
    assert psutil.pid_exists(me.pid)


def test_missing_binary_is_explained(
    setup: Setup, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the embedded extra (tests/embedded covers the start it offers instead).
    import ollama_nb.embedded

    monkeypatch.setattr(ollama_nb.embedded, "embedded_available", lambda: False)
    (fake_bin / "ollama").unlink()
    setup.manager.configure(binary=str(fake_bin / "nope"))
    with pytest.raises(Exception, match="does not exist"):
        setup.manager.start()
    setup.manager.configure(binary=None)
    if not any(Path(p).exists() for p in ("/usr/local/bin/ollama", "/usr/bin/ollama")):
        with pytest.raises(OllamaNotInstalledError, match=r"ollama_nb\[embedded\]"):
            setup.manager.start()
        assert setup.manager.ensure_running() is False  # auto-start stays quiet


def test_remote_host_cannot_be_started(setup: Setup) -> None:
    setup.runtime.configure(host="10.1.2.3:11434")
    with pytest.raises(RemoteHostError, match="only a server on this one"):
        setup.manager.start()
    assert setup.manager.ensure_running() is False


def test_ensure_running_auto_starts_and_warm_records_the_load(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_NB_STANDIN_LOAD_SECONDS", "0.3")
    assert setup.manager.ensure_running() is True
    assert setup.process().answering()

    warmed = setup.manager.warm("llama3.2")
    assert warmed.load_s >= 0.3  # the stand-in's cold load
    assert str(warmed).startswith("Warmed llama3.2: ready after")
    events = setup.runtime.recent.snapshot()
    assert events[-1].model == "llama3.2"
    assert events[-1].timings.latency_s is not None and events[-1].timings.latency_s >= 0.3
    requests = httpx.get(f"http://127.0.0.1:{setup.port}/_standin/requests").json()
    last = requests["requests"][-1]
    assert last["body"]["prompt"] == ""


_KERNEL = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from tests.ollama_process.conftest import make_setup
    made = make_setup(Path({data!r}), {port})
    report = made.manager.start()
    print(report.outcome.action, report.outcome.state.pid, flush=True)
    made.runtime.close()
    if sys.argv[1:] == ["crash"]:
        os._exit(0)  # no atexit: like a kernel killed by the OS
    if sys.argv[1:] == ["linger"]:
        sys.stdin.read()  # stay alive until the test closes our stdin
    """
)


def run_kernel(tmp_path: Path, port: int, *args: str) -> subprocess.Popen[str]:
    script = tmp_path / "kernel.py"
    script.write_text(_KERNEL.format(root=str(ROOT), data=str(tmp_path / "data"), port=port))
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def test_two_kernels_share_one_server_and_the_last_to_exit_stops_it(
    tmp_path: Path, fake_bin: Path
) -> None:
    port = free_port()
    try:
        kernels = [run_kernel(tmp_path, port, "linger") for _ in range(2)]
        # Each kernel reports, then waits on its stdin: both are alive at once, so
        # the second to ask finds the first's server however slowly they start.
        outputs = [k.stdout.readline().split() for k in kernels if k.stdout is not None]
        for k in kernels:
            k.communicate(timeout=60)
        assert sorted(o[0] for o in outputs) == ["adopted", "started"]  # only one spawn
        assert outputs[0][1] == outputs[1][1]  # the same server pid
        assert all(k.returncode == 0 for k in kernels)
        pid = int(outputs[0][1])
        # Both kernels exited normally: their atexit hooks stopped the shared server.
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
        assert not (tmp_path / "data" / "server" / f"{port}.json").exists()
    finally:
        stop_recorded(tmp_path / "data")


def test_orphan_of_a_crashed_kernel_is_adopted(tmp_path: Path, fake_bin: Path) -> None:
    port = free_port()
    made = make_setup(tmp_path / "data", port)
    try:
        kernel = run_kernel(tmp_path, port, "crash")
        action, pid = kernel.communicate(timeout=60)[0].split()
        assert action == "started"
        assert psutil.pid_exists(int(pid))  # the crash left the server running

        report = made.manager.start()
        assert report.outcome.action == "adopted"
        assert report.outcome.state is not None and report.outcome.state.pid == int(pid)
        assert "another kernel" in report.outcome.owner
        assert made.runtime.gate.limit == 2  # restored from the state file
        assert made.manager.stop().outcome.action == "stopped"
        assert not psutil.pid_exists(int(pid))
    finally:
        made.runtime.close()
        stop_recorded(tmp_path / "data")


def test_a_request_with_no_server_auto_starts_one(setup: Setup) -> None:
    """The runtime's connection path: nothing answers, so the manager starts the server."""
    from ollama_nb.application import use_cases

    assert not setup.process().answering()
    names = setup.runtime.run(use_cases.list_models)
    assert any(m.name == "llama3.2:latest" for m in names)
    assert setup.process().answering()
