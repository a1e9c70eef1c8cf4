"""``python -m ollama_nb.testing.standin serve`` behaves like ``ollama serve``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ollama_nb.testing.standin.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLLAMA")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def test_help_mentions_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "OLLAMA_HOST" in out and "OLLAMA_NUM_PARALLEL" in out and "/_standin/" in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().out


def test_serve_listens_on_ollama_host_and_stops_on_sigterm() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_nb.testing.standin", "serve"],
        env=_env(OLLAMA_HOST=f"127.0.0.1:{port}", OLLAMA_NUM_PARALLEL="3"),
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        assert f"Listening on 127.0.0.1:{port} (version 0.13.0-standin)" in banner
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/version").json()["version"] == "0.13.0-standin"
        reply = httpx.post(
            f"{base}/api/chat",
            json={"model": "llama3.2", "stream": False,
                  "messages": [{"role": "user", "content": "cli"}]},
        )  # fmt: skip
        assert reply.json()["message"]["content"] == 'You said: "cli".'
        assert httpx.get(f"{base}/_standin/stats").json()["num_parallel"] == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        rest = proc.stderr.read()
        assert "POST   /api/chat" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_sigint_also_stops_cleanly() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_nb.testing.standin", "serve"],
        env=_env(OLLAMA_HOST=f"http://127.0.0.1:{port}"),
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        assert "Listening on" in proc.stderr.readline()
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
