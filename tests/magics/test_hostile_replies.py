# mypy: disable-error-code="no-untyped-call"
"""Every surface draws a hostile reply inert, and hands the reply back unchanged."""

from __future__ import annotations

import pandas as pd

import ollama_nb
from ollama_nb.presentation.display import Notice, reply_display

from .conftest import Shell

HOSTILE = "<img src=x onerror=alert(1)> and <script>alert(2)</script> [x](javascript:alert(3))"


def scripted(text: str) -> str:
    return f"<<reply>>{text}<</reply>>"


def assert_inert(html: str) -> None:
    lowered = html.lower()
    for bad in ("<img", "<script", 'href="javascript'):
        assert bad not in lowered, f"{bad} in {html!r}"


def test_chat_cell_draws_html_as_text_and_returns_the_reply_unchanged(shell: Shell) -> None:
    reply = shell.run(f"%%chat llama3.2\n{scripted(HOSTILE)}")
    assert reply.text == HOSTILE  # the value is what the model said
    assert shell.ip.user_ns["_"].text == HOSTILE
    _, updates = shell.out.streamed()
    for update in updates:
        assert "text/markdown" not in update.data
        assert_inert(update.data["text/html"])
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in updates[-1].data["text/html"]
    assert HOSTILE in updates[-1].data["text/plain"]


def test_text_and_json_formats_are_inert(shell: Shell) -> None:
    shell.run(f"%%chat llama3.2 -f text\n{scripted(HOSTILE)}")
    assert_inert(shell.out.streamed()[1][-1].data["text/html"])
    hostile_json = '{"<img src=x onerror=alert(1)>": "<script>alert(2)</script>"}'
    # braces would be read as {names} by %%chat: the JSON arrives through a variable
    shell.ip.user_ns["payload"] = scripted(hostile_json)
    shell.run("%%chat llama3.2 -f json\n{payload}")
    html = shell.out.streamed()[1][-1].data["text/html"]
    assert "<img" not in html and "<script" not in html and "&lt;img" in html


def test_a_chat_result_from_the_api_shows_inert(shell: Shell) -> None:
    result = ollama_nb.chat(scripted(HOSTILE), model="llama3.2")
    assert result.text == HOSTILE
    # What a kernel sends as the cell's execute_result when ``result`` ends a cell.
    data, _metadata = shell.ip.display_formatter.format(result)
    assert "text/markdown" not in data
    assert_inert(data["text/html"])
    assert data["text/plain"].startswith(HOSTILE)
    assert data == reply_display(result)


def test_batch_frame_and_error_lines_are_inert(shell: Shell) -> None:
    frame = pd.DataFrame({"q": [scripted(HOSTILE)]})
    out = frame.ollama.chat("{q}", model="llama3.2", progress=False)
    assert out["response"].tolist() == [HOSTILE]  # the DataFrame cell is the reply
    assert_inert(out._repr_html_() or "")
    notice = Notice("server said: <img src=x onerror=alert(1)>\x1b[31m", "error")
    assert "<img" not in notice._repr_html_() and "\x1b" not in notice._repr_html_()
