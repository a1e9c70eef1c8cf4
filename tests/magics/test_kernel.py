"""The extension inside a real ipykernel: the background-loop design under a running kernel loop."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from ollama_nb.testing import StandinHandle

from .conftest import dead_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kernel(ollama_standin_factory: Any) -> Iterator[tuple[BlockingKernelClient, StandinHandle]]:
    standin = ollama_standin_factory(tokens_per_second=200.0)
    env = dict(os.environ)
    env.update(
        OLLAMA_HOST=standin.host,
        OLLAMA_NB_REQUEST_LOG="false",
        OLLAMA_NB_SERVER_AUTO_START="false",  # a dead host stays dead
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield client, standin
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def execute(client: BlockingKernelClient, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    outputs: list[dict[str, Any]] = []
    reply = client.execute_interactive(
        code, output_hook=outputs.append, timeout=60, allow_stdin=False
    )
    return reply["content"], outputs


def test_load_ext_and_stream_a_chat_in_a_kernel(
    kernel: tuple[BlockingKernelClient, StandinHandle],
) -> None:
    client, standin = kernel
    content, _ = execute(client, "%load_ext ollama_nb\n%ollama config stream_interval_s=0.01")
    assert content["status"] == "ok"
    prompt = " ".join(f"w{i}" for i in range(40))
    content, outputs = execute(client, f"%%chat llama3.2\n{prompt}")
    assert content["status"] == "ok"
    types = [o["msg_type"] for o in outputs]
    assert "display_data" in types
    updates = [o for o in outputs if o["msg_type"] == "update_display_data"]
    assert len(updates) >= 3
    final = updates[-1]["content"]["data"]
    assert final["text/plain"].startswith(f'You said: "{prompt}".')
    assert final["text/html"].startswith(f'<p>You said: "{prompt}".</p>')
    assert "execute_result" not in types  # the reply object did not repeat the answer
    content, outputs = execute(client, "print(_.text[:9], _.timings.eval_count > 0)")
    assert any("You said: True" in o["content"].get("text", "") for o in outputs)
    content, outputs = execute(
        client,
        "import ollama_nb\nr = await ollama_nb.achat('from async', model='llama3.2')\nprint(r.text)",
    )
    assert content["status"] == "ok"
    assert any('"from async"' in o["content"].get("text", "") for o in outputs)
    assert len(standin.requests("/api/chat")) == 2


def errors_of(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o["content"] for o in outputs if o["msg_type"] == "error"]


def test_a_failed_chat_fails_the_cell_in_one_line_and_keeps_the_partial_answer(
    kernel: tuple[BlockingKernelClient, StandinHandle],
) -> None:
    client, standin = kernel
    execute(client, "%load_ext ollama_nb")
    content, outputs = execute(client, "%%chat no-such-model\nhi")
    assert content["status"] == "error"  # Run All stops here
    (error,) = errors_of(outputs)
    assert error["ename"] == "ModelNotFoundError"
    assert len(error["traceback"]) == 1 and "is not installed" in error["traceback"][0]
    standin.inject("error_midstream", path="/api/chat", after=5)
    content, outputs = execute(
        client, "%%chat llama3.2 --out kept\n" + " ".join(f"w{i}" for i in range(30))
    )
    assert content["status"] == "error"
    (error,) = errors_of(outputs)
    assert error["ename"] == "StreamError" and len(error["traceback"]) == 1
    content, outputs = execute(client, "print(_ is kept, _.interrupted, _.text[:9])")
    assert content["status"] == "ok"
    assert any("True True You said" in o["content"].get("text", "") for o in outputs)


def test_python_api_errors_are_short_in_a_notebook(
    kernel: tuple[BlockingKernelClient, StandinHandle],
) -> None:
    client, standin = kernel
    refused = (
        "import ollama_nb\n"
        f"ollama_nb.configure(host={dead_url()!r}, retry_attempts=0)\n"
        "ollama_nb.chat('hi', model='llama3.2')"
    )
    content, outputs = execute(client, refused)
    assert content["status"] == "error"
    (error,) = errors_of(outputs)
    lines = "\n".join(error["traceback"]).splitlines()
    assert error["ename"] == "ServerUnavailableError"
    assert len(lines) < 20, lines
    assert "ollama_nb.chat('hi', model='llama3.2')" in lines[-2]  # the user's own line
    assert "httpx" not in "\n".join(lines)
    content, outputs = execute(
        client,
        "import sys\ntry:\n    ollama_nb.chat('hi', model='llama3.2')\nexcept Exception as e:\n"
        "    print(type(e.transport_error).__module__.split('.')[0])",
    )
    assert any(o["content"].get("text", "").strip() == "httpx" for o in outputs)
    standin.inject("error_midstream", path="/api/chat", after=5)
    midstream = (
        f"ollama_nb.configure(host={standin.url!r})\n"
        "ollama_nb.chat(' '.join(['w'] * 30), model='llama3.2')"
    )
    content, outputs = execute(client, midstream)
    (error,) = errors_of(outputs)
    lines = "\n".join(error["traceback"]).splitlines()
    assert error["ename"] == "StreamError"
    assert len(lines) < 25, lines
    assert "kept in .partial" in lines[-1]
