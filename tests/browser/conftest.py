"""One way to start JupyterLab for the browser tests.

Each Lab gets its own config, runtime, workspace and settings folders under the
test's tmp_path, a token, a free loopback port, news and update checks off (a
pop-up would cover the page), and ``OLLAMA_HOST`` pointing at the test's
stand-in. It is stopped at teardown; its log is kept for failure messages.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ollama_nb.testing.standin import StandinServer


@dataclass
class RunningLab:
    url: str
    token: str
    root: Path
    log: Path


StartLab = Callable[..., RunningLab]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(lab: RunningLab, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited early:\n{lab.log.read_text()[-3000:]}")
        try:
            status = httpx.get(f"{lab.url}/api/status", params={"token": lab.token}, timeout=2)
            if status.is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"JupyterLab did not start in 60 s:\n{lab.log.read_text()[-3000:]}")


@pytest.fixture
def start_lab(tmp_path: Path) -> Iterator[StartLab]:
    """``start_lab(ollama, settings=..., server_config=..., env=..., args=...)``."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(
        ollama: StandinServer,
        *,
        settings: Mapping[str, Any] | None = None,
        server_config: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> RunningLab:
        for name in ("root", "workspaces", "user-settings", "app-settings", "data", "runtime"):
            (tmp_path / name).mkdir(exist_ok=True)
        config = tmp_path / "config"
        config.mkdir(exist_ok=True)
        overrides = {
            "@jupyterlab/apputils-extension:notification": {
                "checkForUpdates": False,
                "fetchNews": "false",
            },
            **(settings or {}),
        }
        (tmp_path / "app-settings" / "overrides.json").write_text(json.dumps(overrides))
        if server_config:
            (config / "jupyter_server_config.json").write_text(json.dumps(server_config))
        port, token = _free_port(), secrets.token_hex(16)
        full_env = {
            **os.environ,
            "OLLAMA_HOST": ollama.host,
            "OLLAMA_NB_DATA_DIR": str(tmp_path / "data"),
            "OLLAMA_NB_RETRY_ATTEMPTS": "0",
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
            "JUPYTER_PLATFORM_DIRS": "1",
            **(env or {}),
        }
        full_env.pop("OLLAMA_NB_HOST", None)
        lab = RunningLab(f"http://127.0.0.1:{port}", token, tmp_path / "root", tmp_path / "lab.log")
        with lab.log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jupyterlab",
                    "--no-browser",
                    "--allow-root",
                    "--ip=127.0.0.1",
                    f"--port={port}",
                    f"--IdentityProvider.token={token}",
                    f"--ServerApp.root_dir={lab.root}",
                    f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
                    f"--LabApp.user_settings_dir={tmp_path / 'user-settings'}",
                    f"--LabApp.app_settings_dir={tmp_path / 'app-settings'}",
                    *args,
                ],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        _wait_until_up(lab, process)
        return lab

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
