"""Through a real IPython shell and the Python API to the stand-in server over loopback.

The stand-in logs each request with its images decoded (format, width,
height), so these tests check what actually reached the server.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

import ollama_nb
import ollama_nb.batch  # registers df.ollama
from ollama_nb.domain import InvalidInputError
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing import StandinHandle

from .conftest import encoded, photo


class Published(DisplayPublisher):  # type: ignore[misc]
    """Keeps every display bundle, in order, as a front end would receive them."""

    def __init__(self) -> None:
        super().__init__()
        self.bundles: list[dict[str, Any]] = []

    def publish(self, data: dict[str, Any], *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.bundles.append(dict(data))


@pytest.fixture
def runtime(ollama_standin: StandinHandle, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(
        load_settings(
            host=ollama_standin.url, data_dir=tmp_path, request_log=False, retry_attempts=0
        )
    )
    previous = set_runtime(runtime)
    try:
        yield runtime
    finally:
        set_runtime(previous)
        runtime.close()


@pytest.fixture
def shell(runtime: Runtime) -> Iterator[tuple[InteractiveShell, Published]]:
    ip = InteractiveShell.instance()
    published = Published()
    saved, ip.display_pub = ip.display_pub, published
    ip.run_line_magic("load_ext", "ollama_nb")
    try:
        yield ip, published
    finally:
        ip.run_line_magic("unload_ext", "ollama_nb")
        ip.display_pub = saved


def sent_images(standin: StandinHandle) -> list[dict[str, Any]]:
    body = standin.requests("/api/chat")[-1]["body"]
    images: list[dict[str, Any]] = body["messages"][-1]["images"]
    return images


def test_chat_magic_sends_the_reduced_image(
    shell: tuple[InteractiveShell, Published], ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    ip, published = shell
    file = tmp_path / "photo.jpg"
    file.write_bytes(encoded(photo(2400, 1800), "JPEG", quality=92))
    ip.user_ns["picture"] = str(file)
    result = ip.run_cell("%%chat gemma3:4b --image picture\nWhat is in this photo?")
    assert result.error_in_exec is None and result.error_before_exec is None
    (image,) = sent_images(ollama_standin)
    assert (image["format"], image["width"], image["height"]) == ("JPEG", 1024, 768)
    assert image["bytes"] * 10 <= file.stat().st_size
    assert "Images received: 1) JPEG 1024x768" in result.result.text
    html = [
        b["text/html"] for b in published.bundles if "ollama-nb-images" in b.get("text/html", "")
    ]
    assert len(html) == 1 and "1024\u00d7768 JPEG" in html[0]


def test_chat_magic_resolves_an_array_named_in_the_prompt(
    shell: tuple[InteractiveShell, Published], ollama_standin: StandinHandle
) -> None:
    ip, _ = shell
    ip.user_ns["pixels"] = np.asarray(photo(1600, 800))
    result = ip.run_cell("%%chat gemma3:4b\nDescribe {pixels} briefly.")
    assert result.error_in_exec is None
    (image,) = sent_images(ollama_standin)
    assert (image["format"], image["width"], image["height"]) == ("JPEG", 1024, 512)


def test_python_api_accepts_every_source(
    runtime: Runtime, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 3))
    figure.subplots().bar(["a", "b"], [3, 5])
    file = tmp_path / "wide.png"
    file.write_bytes(encoded(photo(3000, 1000), "PNG"))
    reply = ollama_nb.chat(
        "compare these",
        model="gemma3:4b",
        images=[
            file,
            photo(500, 400),
            figure,
            io.BytesIO(encoded(photo(64, 64), "PNG")).getvalue(),
        ],
    )
    formats = [(i["format"], i["width"], i["height"]) for i in sent_images(ollama_standin)]
    assert formats[0] == ("JPEG", 1024, 341)
    assert formats[1] == ("JPEG", 500, 400)
    assert formats[2][0] == "PNG" and max(formats[2][1:]) <= 1024
    assert formats[3] == ("JPEG", 64, 64)
    assert "Images received: 1) JPEG 1024x341" in reply.text


def test_text_only_model_is_refused_before_upload(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    with pytest.raises(InvalidInputError, match="does not support vision") as caught:
        ollama_nb.chat("what is this", model="llama3.2", images=[photo(64, 64)])
    assert "gemma3:4b" in str(caught.value)  # names an installed model that can see
    assert ollama_standin.requests("/api/chat") == []


def test_vision_check_is_asked_once_per_model(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    for _ in range(3):
        ollama_nb.chat("and this?", model="gemma3:4b", images=[photo(32, 32)])
    assert len(ollama_standin.requests("/api/show")) == 1
    assert len(ollama_standin.requests("/api/chat")) == 3


def test_image_flag_takes_what_people_type(
    shell: tuple[InteractiveShell, Published],
    ollama_standin: StandinHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ip, _ = shell
    (tmp_path / "photo.jpg").write_bytes(encoded(photo(40, 30), "JPEG"))
    (tmp_path / "shot.png").write_bytes(encoded(photo(20, 20), "PNG"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    ip.user_ns["pil"] = photo(10, 10)
    for flag, width in [
        ("photo.jpg", 40), ("'photo.jpg'", 40), ('"photo.jpg"', 40),
        ("~/shot.png", 20), ("'~/shot.png'", 20), ("pil", 10), ("pil.resize((8,8))", 8),
    ]:  # fmt: skip
        result = ip.run_cell(f"%%chat gemma3:4b --image {flag}\nWhat is this?")
        assert result.error_in_exec is None, flag
        assert sent_images(ollama_standin)[0]["width"] == width, flag
    sent = len(ollama_standin.requests("/api/chat"))
    result = ip.run_cell("%%chat gemma3:4b --image nothing.jpg\nWhat is this?")
    error = result.error_in_exec
    assert isinstance(error, InvalidInputError)
    (line,) = error._render_traceback_()
    assert "--image nothing.jpg: not a variable or expression (NameError" in line
    assert f"no file at {tmp_path / 'nothing.jpg'}" in line
    assert len(ollama_standin.requests("/api/chat")) == sent


def test_every_surface_refuses_before_sending_and_names_models_that_can(
    shell: tuple[InteractiveShell, Published], ollama_standin: StandinHandle
) -> None:
    ip, _ = shell
    ip.user_ns["pil"] = photo(10, 10)
    result = ip.run_cell("%%chat llama3.2 --image pil\nWhat is this?")
    assert isinstance(result.error_in_exec, InvalidInputError)
    assert "'llama3.2' does not support vision" in str(result.error_in_exec)
    assert "gemma3:4b" in str(result.error_in_exec)
    result = ip.run_cell("%%chat llama3.2 --think\nWhy?")
    assert isinstance(result.error_in_exec, InvalidInputError)
    assert "does not support thinking" in str(result.error_in_exec)
    assert "qwen3:0.6b" in str(result.error_in_exec)
    with pytest.raises(InvalidInputError, match=r"Installed models that can: qwen3:0\.6b"):
        ollama_nb.chat("Why?", model="gemma3:4b", think=True)
    frame = pd.DataFrame({"q": ["a", "b"], "img": [photo(8, 8), photo(9, 9)]})
    out = frame.ollama.chat("{q}", model="llama3.2", images="img", progress=False)
    assert out["status"].tolist() == ["failed", "failed"]
    assert "does not support vision" in out["error"].iloc[0]
    assert ollama_standin.requests("/api/chat") == []
    assert ip.run_cell("%%chat qwen3:0.6b --think\nWhy?").error_in_exec is None
