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

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kernel(ollama_standin_factory: Any) -> Iterator[tuple[BlockingKernelClient, StandinHandle]]:
    standin = ollama_standin_factory(tokens_per_second=200.0)
    env = dict(os.environ)
    env.update(
        OLLAMA_HOST=standin.host,
        OLLAMA_NB_REQUEST_LOG="false",
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
    final = updates[-1]["content"]["data"]["text/markdown"]
    assert final.startswith(f'You said: "{prompt}".')
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
