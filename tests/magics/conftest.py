# mypy: disable-error-code="no-untyped-call"
"""A real IPython shell with ollama_nb loaded, talking to the stand-in over loopback."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing import StandinHandle


@dataclass
class Published:
    data: dict[str, Any]
    display_id: str | None
    update: bool


class Recorder(DisplayPublisher):
    """Keeps every display and in-place update, like a front end would receive them."""

    def __init__(self) -> None:
        super().__init__()
        self.outputs: list[Published] = []
        self.on_publish: Any = None

    def publish(
        self, data: dict[str, Any], metadata: Any = None, source: Any = None, *,
        transient: dict[str, Any] | None = None, update: bool = False, **kwargs: Any,
    ) -> None:  # fmt: skip
        item = Published(dict(data), (transient or {}).get("display_id"), update)
        self.outputs.append(item)
        if self.on_publish is not None:
            self.on_publish(item)

    def updates_of(self, display_id: str) -> list[Published]:
        return [o for o in self.outputs if o.display_id == display_id and o.update]

    def streamed(self) -> tuple[str, list[Published]]:
        """The display id of the (last) streamed answer and its updates."""
        ids = [o.display_id for o in self.outputs if o.display_id and not o.update]
        assert ids, "no updatable display was created"
        return ids[-1], self.updates_of(ids[-1])

    def texts(self) -> str:
        return "\n".join(o.data.get("text/plain", "") for o in self.outputs)


@dataclass
class Shell:
    ip: InteractiveShell
    out: Recorder
    standin: StandinHandle
    runtime: Runtime

    def run(self, code: str, *, cell_id: str | None = None) -> Any:
        """Run a cell; return its value, re-raising what IPython caught."""
        result = self.ip.run_cell(code, store_history=True, cell_id=cell_id)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            raise error
        return result.result

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.standin.requests("/api/chat")]


def make_shell(url: str, standin: StandinHandle, **settings: Any) -> Iterator[Shell]:
    ip = InteractiveShell.instance()
    recorder = Recorder()
    saved_pub = ip.display_pub
    ip.display_pub = recorder
    # Each shell keeps its metrics and kept answers apart: a cached answer from another
    # test (or an earlier run) would hide the request a test looks for.
    data_dir = Path(tempfile.mkdtemp(prefix="ollama_nb-magics-"))
    settings.setdefault("data_dir", data_dir)
    runtime = Runtime(load_settings(host=url, request_log=False, retry_attempts=0, **settings))
    previous = set_runtime(runtime)
    ip.run_line_magic("load_ext", "ollama_nb")
    try:
        yield Shell(ip, recorder, standin, runtime)
    finally:
        ip.run_line_magic("unload_ext", "ollama_nb")
        ip.display_pub = saved_pub
        ip.user_ns.pop("_", None)
        set_runtime(previous)
        runtime.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def shell(ollama_standin: StandinHandle) -> Iterator[Shell]:
    yield from make_shell(ollama_standin.url, ollama_standin)


@pytest.fixture
def slow_shell(ollama_standin_factory: Any) -> Iterator[Shell]:
    """A stand-in that writes 100 tokens/s, so streams take long enough to watch."""
    handle = ollama_standin_factory(tokens_per_second=100.0)
    yield from make_shell(handle.url, handle)


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
