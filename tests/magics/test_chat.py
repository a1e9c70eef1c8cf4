# mypy: disable-error-code="no-untyped-call"
"""``%%chat`` and ``%chat`` in a real IPython shell against the stand-in."""

from __future__ import annotations

import _thread
import io
import threading

import pytest
from IPython.core.error import UsageError
from PIL import Image
from pydantic import BaseModel, field_validator

from ollama_nb.domain import (
    InvalidInputError,
    ModelNotFoundError,
    ServerUnavailableError,
    StreamError,
)
from ollama_nb.presentation.display import CURSOR, ChatReply

from .conftest import Shell, dead_url, make_shell


def test_streams_in_place_and_final_render_holds_full_text(slow_shell: Shell) -> None:
    slow_shell.run("%ollama config stream_interval_s=0.02")
    prompt = " ".join(f"word{i}" for i in range(40))
    reply = slow_shell.run(f"%%chat llama3.2\n{prompt}")
    assert isinstance(reply, ChatReply)
    assert reply.text == f'You said: "{prompt}".'
    _display_id, updates = slow_shell.out.streamed()
    streaming = [u for u in updates if CURSOR in u.data.get("text/html", "")]
    assert len(streaming) >= 3
    assert len({u.data["text/plain"] for u in streaming}) >= 3  # the text grew between updates
    final = updates[-1].data
    assert final["text/plain"].startswith(reply.text)
    assert final["text/html"].startswith(f"<p>{reply.text}</p>")
    assert CURSOR not in final["text/html"]
    assert "llama3.2" in final["text/html"] and "tokens" in final["text/html"]
    assert slow_shell.ip.user_ns["_"] is reply


def test_throttle_limits_updates(slow_shell: Shell) -> None:
    slow_shell.run("%ollama config stream_interval_s=10")
    reply = slow_shell.run("%%chat llama3.2\n" + " ".join(["w"] * 30))
    _, updates = slow_shell.out.streamed()
    assert reply.timings.eval_count > 20
    assert len(updates) <= 3  # at most the first token, maybe one more, and the final render


def test_reply_has_plain_and_rich_repr_and_is_not_shown_twice(
    shell: Shell, capsys: pytest.CaptureFixture[str]
) -> None:
    reply = shell.run("%%chat llama3.2\nhello")
    assert repr(reply).startswith("ChatReply(model='llama3.2'")
    assert not hasattr(reply, "_repr_markdown_")  # a reply is never published as Markdown
    assert "You said" not in capsys.readouterr().out  # the cell's value did not repeat the answer
    before = len(shell.out.outputs)
    shell.run("_")  # a later cell shows it normally
    assert any(
        'You said: "hello"' in o.data.get("text/html", "") for o in shell.out.outputs[before:]
    )


def test_memory_sends_the_whole_thread(shell: Shell) -> None:
    shell.run("%%chat llama3.2 -s 'be brief'\nfirst question", cell_id="a")
    shell.run("%%chat\nsecond question", cell_id="b")
    shell.run("%%chat\nthird question", cell_id="c")
    messages = shell.chat_requests()[-1]["messages"]
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert messages[0]["content"] == "be brief"
    assert messages[1]["content"] == "first question"
    assert messages[-1]["content"] == "third question"
    assert shell.chat_requests()[-1]["model"] == "llama3.2"  # the thread keeps its model


def test_rerunning_a_cell_replaces_its_turn(shell: Shell) -> None:
    shell.run("%%chat llama3.2\nfirst", cell_id="a")
    shell.run("%%chat\nsecond", cell_id="b")
    shell.run("%%chat\nsecond, reworded", cell_id="b")
    messages = shell.chat_requests()[-1]["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["first", "second, reworded"]
    shell.run("%%chat\nfirst again", cell_id="a")  # an earlier cell: only what came before it
    assert [m["role"] for m in shell.chat_requests()[-1]["messages"]] == ["user"]
    table = shell.run("%ollama history")
    assert [row[1] for row in table.rows] == ["first again", "second, reworded"]


def test_new_and_named_threads(shell: Shell) -> None:
    shell.run("%%chat llama3.2\nin default", cell_id="a")
    shell.run("%%chat llama3.2 -c side\nin side", cell_id="b")
    assert len(shell.chat_requests()[-1]["messages"]) == 1
    shell.run("%%chat -c side\nmore side", cell_id="c")
    assert next(m["content"] for m in shell.chat_requests()[-1]["messages"]) == "in side"
    shell.run("%%chat llama3.2 --new\nfresh", cell_id="d")
    assert len(shell.chat_requests()[-1]["messages"]) == 1


def test_budget_leaves_out_oldest_turns_with_a_note(shell: Shell) -> None:
    shell.run("%ollama config chat_token_budget=40")
    for i in range(4):
        shell.run(f"%%chat llama3.2\nquestion number {i} " + "x" * 40, cell_id=f"c{i}")
    messages = shell.chat_requests()[-1]["messages"]
    assert len(messages) < 7
    assert "left out to fit the 40-token budget" in shell.out.texts()


def test_options_temperature_and_system_reach_the_server(shell: Shell) -> None:
    shell.run("%%chat llama3.2 -t 0.3 -o '{\"num_ctx\": 2048}' -o 'top_k=5 seed=7'\nhi")
    body = shell.chat_requests()[-1]
    assert body["options"] == {"temperature": 0.3, "num_ctx": 2048, "top_k": 5, "seed": 7}


def test_invalid_options_are_one_line_errors(shell: Shell) -> None:
    with pytest.raises(UsageError, match="invalid JSON"):
        shell.run("%%chat llama3.2 -o '{num_ctx: 1}'\nhi")
    with pytest.raises(InvalidInputError, match="Did you mean 'temperature'") as failed:
        shell.run("%%chat llama3.2 -o temprature=1\nhi")
    assert failed.value._render_traceback_() == [
        "InvalidInputError: Unknown Ollama option 'temprature'. Did you mean 'temperature'?"
    ]
    assert shell.chat_requests() == []


def test_line_magic_with_question_mark(shell: Shell) -> None:
    reply = shell.run("%chat -m llama3.2 what's up?")
    assert reply.text == 'You said: "what\'s up?".'
    stored = shell.run("answer = %chat -m llama3.2 -- -5 degrees, cold?")
    assert stored is None and shell.ip.user_ns["answer"].text == 'You said: "-5 degrees, cold?".'


def test_bad_flag_and_empty_prompt(shell: Shell) -> None:
    with pytest.raises(UsageError, match="Unknown option --bogus"):
        shell.run("%chat --bogus hi")
    with pytest.raises(UsageError, match="unrecognized arguments"):
        shell.run("%%chat llama3.2 --bogus\nhi")
    with pytest.raises(UsageError, match="prompt is empty"):
        shell.run("%%chat llama3.2\n   \n")
    with pytest.raises(UsageError, match="invalid choice"):
        shell.run("%%chat -f yaml\nhi")


def test_interpolation_in_a_chat(shell: Shell) -> None:
    shell.run("city = 'Lyon'")
    shell.run('%%chat llama3.2\nWeather in {city}? Literal {{city}}, JSON {"a": 1}, {missing}.')
    sent = shell.chat_requests()[-1]["messages"][-1]["content"]
    assert sent == 'Weather in Lyon? Literal {city}, JSON {"a": 1}, {missing}.'
    assert "{missing}: no variable named 'missing'" in shell.out.texts()


def test_truncation_is_visible(shell: Shell) -> None:
    shell.run("%ollama config interpolation_max_chars=50")
    shell.run("big = 'y' * 500")
    shell.run("%%chat llama3.2\nSummarise {big}")
    sent = shell.chat_requests()[-1]["messages"][-1]["content"]
    assert sent.startswith("Summarise " + "y" * 50) and "truncated: 450 of 500" in sent
    assert "only the first 50 were sent" in shell.out.texts()


class City(BaseModel):
    name: str
    population: int


class Picky(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def _never(cls, value: str) -> str:
        raise ValueError("no name is good enough")


def test_schema_parses_into_the_model(shell: Shell) -> None:
    shell.ip.user_ns["City"] = City
    reply = shell.run("%%chat llama3.2 --schema City --out city\nName a city")
    assert isinstance(reply.parsed, City)
    assert shell.ip.user_ns["city"] is reply
    assert shell.chat_requests()[-1]["format"]["properties"]["population"]["type"] == "integer"


def test_schema_validation_failure_keeps_raw_text(shell: Shell) -> None:
    shell.ip.user_ns["Picky"] = Picky
    reply = shell.run("%%chat llama3.2 --schema Picky\nName it")
    assert reply.parsed is None and reply.text.startswith("{")
    assert "no name is good enough" in (reply.validation_error or "")
    assert "does not match Picky" in shell.out.texts()


def test_schema_that_is_not_a_schema(shell: Shell) -> None:
    with pytest.raises(UsageError, match="expected a pydantic model class or a JSON schema"):
        shell.run("%%chat llama3.2 --schema 42\nhi")
    with pytest.raises(UsageError, match="NameError"):
        shell.run("%%chat llama3.2 --schema Nope\nhi")


def test_invalid_json_schema_is_refused_before_sending(shell: Shell) -> None:
    shell.ip.user_ns["bad"] = {"type": "object", "properties": {"n": {"type": "integr"}}}
    with pytest.raises(UsageError, match="invalid at properties/n/type"):
        shell.run("%%chat llama3.2 --schema bad\ncount")
    assert shell.chat_requests() == []


def test_json_schema_dict(shell: Shell) -> None:
    shell.ip.user_ns["schema"] = {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
    }  # fmt: skip
    reply = shell.run("%%chat llama3.2 --schema schema\ncount")
    assert isinstance(reply.parsed, dict) and isinstance(reply.parsed["n"], int)
    assert reply.validation_error is None


def test_format_json_renders_collapsible_tree(shell: Shell) -> None:
    reply = shell.run("%%chat llama3.2 -f json\nhi")
    assert reply.parsed == {"response": 'You said: "hi".'}
    _, updates = shell.out.streamed()
    assert "<details" in updates[-1].data["text/html"]
    assert shell.chat_requests()[-1]["format"] == "json"


def test_format_code_goes_to_a_new_cell(shell: Shell) -> None:
    reply = shell.run("%%chat llama3.2 -f code\n```python\nprint('hi')\n```")
    assert reply.code == "print('hi')"
    assert shell.ip.rl_next_input == "print('hi')"


def test_format_text(shell: Shell) -> None:
    shell.run("%%chat llama3.2 -f text\n<b>bold</b>")
    _, updates = shell.out.streamed()
    assert "&lt;b&gt;" in updates[-1].data["text/html"]


def test_think_is_folded_above_the_answer(shell: Shell) -> None:
    reply = shell.run("%%chat qwen3:0.6b --think\nponder")
    assert reply.thinking
    final = shell.out.streamed()[1][-1].data["text/html"]
    assert final.index("<summary>Thinking</summary>") < final.index(reply.text)
    assert shell.chat_requests()[-1]["think"] is True


def test_no_stream(shell: Shell) -> None:
    reply = shell.run("%%chat llama3.2 --no-stream\nall at once")
    assert reply.text == 'You said: "all at once".'
    assert shell.chat_requests()[-1]["stream"] is False
    assert len(shell.out.streamed()[1]) == 1


def test_image_flag_sends_the_image(shell: Shell) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), "red").save(buffer, format="PNG")
    shell.ip.user_ns["png"] = buffer.getvalue()
    reply = shell.run("%%chat gemma3:4b --image png\nwhat is this?")
    assert "Images received: 1) PNG 32x16" in reply.text
    assert len(shell.chat_requests()[-1]["messages"][-1]["images"]) == 1


def test_unknown_model_suggests_close_names(shell: Shell) -> None:
    with pytest.raises(ModelNotFoundError) as failed:
        shell.run("%%chat llama3.3\nhi")
    (text,) = failed.value._render_traceback_()
    assert "'llama3.3' is not installed" in text and "llama3.2:latest" in text
    assert "%ollama pull llama3.3" in text


def test_server_down_names_host(ollama_standin) -> None:  # type: ignore[no-untyped-def]
    url = dead_url()
    for down in make_shell(url, ollama_standin):
        with pytest.raises(ServerUnavailableError) as failed:
            down.run("%%chat llama3.2\nhi")
        (text,) = failed.value._render_traceback_()
        assert url in text and "%ollama start" in text
        assert failed.value.transport_error is not None  # httpx's error, off the screen


def test_error_midstream_keeps_partial(shell: Shell) -> None:
    shell.standin.inject("error_midstream", path="/api/chat", after=5)
    with pytest.raises(StreamError) as failed:
        shell.run("%%chat llama3.2 --out kept\n" + " ".join(["tok"] * 20))
    assert len(failed.value._render_traceback_()) == 1
    reply = shell.ip.user_ns["_"]
    assert isinstance(reply, ChatReply) and shell.ip.user_ns["kept"] is reply
    assert reply.interrupted and reply.text and reply.error
    final = shell.out.streamed()[1][-1].data
    assert final["text/plain"].startswith(reply.text) and "interrupted" in final["text/html"]


def test_interrupt_keeps_partial_and_next_cell_works(slow_shell: Shell) -> None:
    slow_shell.run("%ollama config stream_interval_s=0.01")
    first_token = threading.Event()

    def watch(item: object) -> None:
        if getattr(item, "update", False):
            first_token.set()

    slow_shell.out.on_publish = watch

    def interrupt_after_first_token() -> None:
        if first_token.wait(10):
            _thread.interrupt_main()  # what Ctrl-C / the stop button does

    timer = threading.Thread(target=interrupt_after_first_token)
    timer.start()
    with pytest.raises(KeyboardInterrupt):  # the cell fails, so Run All stops here
        slow_shell.run("%%chat llama3.2\n" + " ".join(["slow"] * 300))
    timer.join()
    slow_shell.out.on_publish = None
    reply = slow_shell.ip.user_ns["_"]
    assert isinstance(reply, ChatReply)
    assert reply.interrupted
    assert reply.text.startswith("You said")
    assert len(reply.text) < len(" ".join(["slow"] * 300))
    final = slow_shell.out.streamed()[1][-1].data
    assert final["text/plain"].startswith(reply.text) and "interrupted" in final["text/html"]
    after = slow_shell.run("%%chat llama3.2\nstill fine?")
    assert after.text == 'You said: "still fine?".' and not after.interrupted
