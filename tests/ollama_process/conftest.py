"""A fake ``ollama`` on PATH that runs the stand-in, and a manager pointed at a free port.

The fake is a real executable, so the manager's whole spawn / health / stop / adopt
path runs for real; only "which program is ollama" is faked. Every server a test
starts is recorded in the data directory and stopped at teardown (never anything
else).
"""

from __future__ import annotations

import os
import socket
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ollama_nb.ollama_process import Hardware, ServerManager, load_server_settings
from ollama_nb.ollama_process.process import ServerProcess
from ollama_nb.runtime import Runtime
from ollama_nb.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_executable(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder first on PATH holding an ``ollama`` that serves the stand-in."""
    folder = tmp_path / "bin"
    folder.mkdir()
    write_executable(
        folder / "ollama",
        f'PYTHONPATH="{ROOT}" exec "{sys.executable}" -m ollama_nb.testing.standin "$@"',
    )
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    for name in list(os.environ):
        if name.startswith(("OLLAMA_NB_SERVER_", "OLLAMA_NUM_", "OLLAMA_MAX_", "OLLAMA_KV")):
            monkeypatch.delenv(name)
    return folder


@dataclass
class Setup:
    runtime: Runtime
    manager: ServerManager
    port: int
    data_dir: Path

    def process(self) -> ServerProcess:
        return self.manager.process()


def make_setup(data_dir: Path, port: int, hardware: Hardware | None = None) -> Setup:
    runtime = Runtime(
        load_settings(host=f"127.0.0.1:{port}", data_dir=data_dir, request_log=False),
        server_settings=load_server_settings(health_timeout_s=20),
        hardware=hardware or Hardware.apple("M2", memory_gb=16),
        environ={},
    )
    return Setup(runtime, runtime.server, port, data_dir)


def stop_recorded(data_dir: Path) -> None:
    """Stop every server whose state file (written by our code in this test) is in data_dir."""
    for path in (data_dir / "server").glob("*.json"):
        host_port = int(path.stem)
        server = ServerProcess(load_settings(host=f"127.0.0.1:{host_port}").ollama_host, data_dir)
        state = server.read_state()
        if state is not None and server.owned_process(state) is not None:
            server._terminate(state.pid)  # reaps the Popen too when this process spawned it
        path.unlink(missing_ok=True)


@pytest.fixture
def setup(tmp_path: Path, fake_bin: Path) -> Iterator[Setup]:
    data_dir = tmp_path / "data"
    made = make_setup(data_dir, free_port())
    try:
        yield made
    finally:
        made.runtime.close()
        stop_recorded(data_dir)
