"""ChatPanel against the stand-in: streaming, Stop, threads shared with %%chat, images, errors."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from ollama_nb.widgets import ChatPanel

from .conftest import Env, dead_url, wait_for

LONG = " ".join(f"word{i}" for i in range(80))


def ready(env: Env, **kwargs: Any) -> ChatPanel:
    panel = ChatPanel(shell=env.ip, runtime=env.runtime, **kwargs)
    wait_for(lambda: panel.model.options, "the model list")
    return panel


def upload(name: str, content: bytes, kind: str) -> tuple[dict[str, Any], ...]:
    """What ``FileUpload.value`` holds after the front end sent one file."""
    return (
        {
            "name": name,
            "type": kind,
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.now(UTC),
        },
    )


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_model_list_marks_vision_and_leaves_out_embedding_models(env: Env) -> None:
    panel = ready(env, model="llama3.2")
    labels = dict(panel.model.options)
    assert labels["gemma3:4b  [vision]"] == "gemma3:4b"
    assert "llama3.2:latest" in labels.values()
    assert all("embed" not in name for name in labels.values())
    assert panel.model.value == "llama3.2:latest"
    panel.close()


def test_send_streams_the_answer_and_records_the_turn_in_the_shared_thread(env: Env) -> None:
    panel = ready(env, model="llama3.2")
    panel.system.value = "Be brief."
    panel.temperature.value = 0.2
    panel.prompt.value = "What is a kernel?"
    panel.send_button.click()
    wait_for(lambda: not panel.busy, "the reply")
    body = env.requests("/api/chat")[-1]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][-1]["content"] == "What is a kernel?"
    assert body["options"]["temperature"] == 0.2
    answer = panel.transcript_html[-1]
    assert "What is a kernel?" in answer and "tok/s" in answer
    assert "tokens" in panel.figures.value and "TTFT" in panel.figures.value
    assert panel.prompt.value == ""
    thread = panel.store.find("default")
    assert thread is not None and thread.turns[-1].user.content == "What is a kernel?"
    # %%chat continues the same thread: the panel's turn goes along as history.
    env.ip.run_cell("%%chat\nAnd a cell?")
    history = env.requests("/api/chat")[-1]["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == [
        "What is a kernel?",
        "And a cell?",
    ]
    panel.close()


def test_a_chat_thread_shows_up_in_the_panel_and_continues_there(env: Env) -> None:
    env.ip.run_line_magic("load_ext", "ollama_nb")
    env.ip.run_cell("%%chat -m llama3.2 -c notes -s 'You take notes.'\nRemember 42.")
    panel = ready(env)
    assert "notes" in panel.conversation.options
    panel.conversation.value = "notes"
    assert "Remember 42." in panel.transcript_html[0]
    assert panel.system.value == "You take notes."
    assert panel.model.value == "llama3.2:latest"  # the thread's model
    panel.send("What did I say?")
    wait_for(lambda: not panel.busy, "the reply")
    sent = env.requests("/api/chat")[-1]["messages"]
    assert sent[0]["content"] == "You take notes."
    assert [m["content"] for m in sent if m["role"] == "user"] == [
        "Remember 42.",
        "What did I say?",
    ]
    panel.close()


def test_stop_keeps_the_partial_answer_and_send_is_refused_while_streaming(slow_env: Env) -> None:
    panel = ready(slow_env, model="llama3.2")
    panel.send(LONG)
    assert panel.busy and panel.send_button.disabled and not panel.stop_button.disabled
    wait_for(lambda: "word5 " in panel.transcript_html[-1], "some streamed text")
    panel.send("a second question")  # refused: never two interleaved replies
    assert "still streaming" in panel.banner.text
    panel.stop_button.click()
    wait_for(lambda: not panel.busy, "the stop")
    assert not panel.send_button.disabled and panel.stop_button.disabled
    kept = panel.store.get("default").turns[-1].reply
    assert kept.interrupted and kept.text and len(kept.text.split()) < 80
    assert kept.text.strip() in panel.transcript_html[-1]
    assert "interrupted" in panel.transcript_html[-1]
    assert len(slow_env.requests("/api/chat")) == 1
    panel.close()


def test_shift_enter_in_the_prompt_box_sends(env: Env) -> None:
    panel = ready(env, model="llama3.2")
    panel.prompt.value = "sent with shift enter"
    # What the front end sends on Shift+Enter.
    panel.prompt._handle_custom_msg({"type": "submit"}, [])
    wait_for(lambda: not panel.busy and len(env.requests("/api/chat")) == 1, "the reply")
    assert env.requests("/api/chat")[0]["messages"][-1]["content"] == "sent with shift enter"
    panel.close()


def test_an_upload_that_is_not_an_image_is_refused_and_an_image_is_sent(env: Env) -> None:
    panel = ready(env, model="gemma3:4b")
    panel.upload.value = upload("notes.txt", b"hello", "text/plain")
    assert "notes.txt is not an image" in panel.banner.text
    assert panel.banner.level == "error" and panel.attached.value == ""
    panel.upload.value = upload("red.png", png_bytes(), "image/png")
    assert "red.png" in panel.attached.value
    panel.send("What colour?")
    wait_for(lambda: not panel.busy, "the reply")
    logged = env.standin.requests("/api/chat")[-1]
    assert len(logged["body"]["messages"][-1]["images"]) == 1
    assert "1 image" in panel.transcript_html[-2]
    assert panel.attached.value == ""  # attachments go with one message
    panel.close()


def test_an_image_variable_from_the_notebook_can_be_attached(env: Env) -> None:
    env.ip.user_ns["photo"] = Image.new("RGB", (64, 64), (0, 90, 200))
    env.ip.user_ns["not_an_image"] = [1, 2, 3]
    panel = ready(env, model="gemma3:4b")
    assert "photo" in panel.variable.options and "not_an_image" not in panel.variable.options
    panel.variable.value = "photo"
    panel.attach_button.click()
    panel.send("Describe it.")
    wait_for(lambda: not panel.busy, "the reply")
    assert len(env.requests("/api/chat")[-1]["messages"][-1]["images"]) == 1
    del env.ip.user_ns["photo"], env.ip.user_ns["not_an_image"]
    panel.close()


def test_attach_takes_a_typed_path_by_the_same_rule_as_the_magic(env: Env, tmp_path: Path) -> None:
    (tmp_path / "shot.png").write_bytes(png_bytes())
    panel = ready(env, model="gemma3:4b")
    panel.variable.value = f"'{tmp_path / 'shot.png'}'"
    panel.attach_button.click()
    assert "shot.png" in panel.attached.value and panel.variable.value == ""
    panel.variable.value = "nothing_here.png"
    panel.attach_button.click()
    assert "not a variable or expression" in panel.banner.text
    assert "no file at" in panel.banner.text
    panel.send("Describe it.")
    wait_for(lambda: not panel.busy, "the reply")
    assert len(env.requests("/api/chat")[-1]["messages"][-1]["images"]) == 1
    panel.close()


def test_an_image_for_a_text_only_model_is_refused_before_sending(env: Env) -> None:
    panel = ready(env, model="llama3.2")
    panel.upload.value = upload("red.png", png_bytes(), "image/png")
    panel.send("What colour?")
    wait_for(lambda: not panel.busy, "the refusal")
    assert "does not support vision" in panel.banner.text
    assert "gemma3:4b" in panel.banner.text
    assert env.requests("/api/chat") == []
    panel.close()


def test_no_server_shows_a_banner_with_the_start_action(env: Env) -> None:
    env.runtime.configure(host=dead_url())
    panel = ChatPanel(shell=env.ip, runtime=env.runtime)
    wait_for(lambda: panel.banner.text, "the banner")
    assert panel.banner.level == "error"
    assert "Cannot reach the Ollama server" in panel.banner.text
    assert "Traceback" not in panel.banner.message.value
    assert panel.banner.start_button.layout.display == ""
    panel.send("hello")  # no model to ask: a clear line, nothing sent
    assert "No model to ask" in panel.banner.text
    panel.close()


def test_close_cancels_the_stream_and_leaves_no_task(slow_env: Env) -> None:
    panel = ready(slow_env, model="llama3.2")
    panel.send(LONG)
    wait_for(lambda: "word2 " in panel.transcript_html[-1], "some streamed text")
    panel.close()
    assert panel._background.active == 0
    assert not panel.busy
    assert panel.store.get("default").turns[-1].reply.interrupted


def test_panel_tools_run_and_show_one_line_under_the_answer(env: Env) -> None:
    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    panel = ready(env, model="llama3.2", tools=[add])
    panel.prompt.value = "What is 12 plus 12? Use add."
    panel.send_button.click()
    wait_for(lambda: not panel.busy, "the reply")
    answer = panel.transcript_html[-1]
    assert 'Tool add returned: "24".' in answer
    assert "🔧 add(a=12, b=12) → 24" in answer
    assert env.requests("/api/chat")[0]["tools"][0]["function"]["name"] == "add"
    panel.close()


def test_a_hostile_reply_is_drawn_inert_and_kept_as_said(env: Env) -> None:
    hostile = "<img src=x onerror=alert(1)> **bold** [x](javascript:alert(2))"
    panel = ready(env, model="llama3.2")
    panel.prompt.value = f"<<reply>>{hostile}<</reply>>"
    panel.send_button.click()
    wait_for(lambda: not panel.busy, "the reply")
    you, answer = panel.transcript_html[-2:]
    for html in (you, answer):
        assert "<img" not in html and 'href="javascript' not in html
    assert "&lt;img src=x onerror=alert(1)&gt; <strong>bold</strong>" in answer
    assert panel.transcript.outputs[-1]["data"]["text/plain"] == hostile
    assert all("text/markdown" not in o["data"] for o in panel.transcript.outputs)
    thread = panel.store.find("default")
    assert thread is not None and thread.turns[-1].reply.text == hostile
    panel.close()
