"""The ``openai`` SDK against the server's ``/v1`` API, as Ollama documents it."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator

import openai
import pytest
from PIL import Image

from .conftest import NEEDS_SERVER, SHORT, Target

pytestmark = [NEEDS_SERVER, pytest.mark.timeout(600)]
MAX = SHORT["num_predict"]


@pytest.fixture
def client(target: Target) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{target.url}/v1", api_key="ollama", max_retries=0) as c:
        yield c


def _png_data_url() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_chat_completion(target: Target, client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=target.chat_model,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=MAX,
        temperature=0,
        seed=1,
    )
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert isinstance(reply.choices[0].message.content, str)
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= MAX
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_streams_server_sent_events_with_usage(target: Target, client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=target.chat_model,
            messages=[{"role": "user", "content": "Count to three"}],
            max_tokens=MAX,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert 0 < chunks[-1].usage.completion_tokens <= MAX
    assert len({c.id for c in chunks}) == 1


def test_response_format_json_schema_is_enforced(target: Target, client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"color": {"type": "string", "enum": ["red", "blue"]}},
        "required": ["color"],
    }
    reply = client.chat.completions.create(
        model=target.chat_model,
        messages=[{"role": "user", "content": "Pick a color as JSON."}],
        max_tokens=24,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    assert json.loads(reply.choices[0].message.content or "") in ({"color": "red"},
                                                                  {"color": "blue"})  # fmt: skip


def test_unsafe_schema_is_refused_as_a_bad_request(target: Target, client: openai.OpenAI) -> None:
    if target.real_ollama:
        pytest.skip("a real Ollama accepts this schema; the bound is the embedded server's own")
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=target.chat_model,
            messages=[{"role": "user", "content": "x"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "s", "schema": {"type": "string", "maxLength": 2000}},
            },
        )
    assert "maxLength" in refused.value.message


def test_images_as_data_urls_reach_the_model_check(target: Target, client: openai.OpenAI) -> None:
    content: list[dict[str, object]] = [
        {"type": "text", "text": "What color is this?"},
        {"type": "image_url", "image_url": {"url": _png_data_url()}},
    ]
    if "vision" in target.capabilities(target.chat_model):
        reply = client.chat.completions.create(
            model=target.chat_model, messages=[{"role": "user", "content": content}],  # type: ignore[misc,list-item]
            max_tokens=MAX,
        )  # fmt: skip
        assert reply.choices[0].message.content is not None
    else:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(
                model=target.chat_model, messages=[{"role": "user", "content": content}],  # type: ignore[misc,list-item]
                max_tokens=MAX,
            )  # fmt: skip
        assert "vision" in refused.value.message or "image" in refused.value.message
    remote = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    with pytest.raises(openai.BadRequestError) as by_url:
        client.chat.completions.create(
            model=target.chat_model, messages=[{"role": "user", "content": remote}],  # type: ignore[misc,list-item]
        )  # fmt: skip
    assert "image URLs are not currently supported" in by_url.value.message


def test_tools_are_offered_or_refused_by_capability(target: Target, client: openai.OpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    if "tools" in target.capabilities(target.chat_model):
        reply = client.chat.completions.create(
            model=target.chat_model,
            messages=messages,
            tools=tools,
            max_tokens=64,  # type: ignore[arg-type]
        )
        choice = reply.choices[0]
        for call in choice.message.tool_calls or []:
            assert call.type == "function"
            json.loads(call.function.arguments)  # arguments travel as a JSON string
        if choice.message.tool_calls:
            assert choice.finish_reason == "tool_calls"
    else:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(
                model=target.chat_model,
                messages=messages,
                tools=tools,  # type: ignore[arg-type]
            )
        assert "does not support tools" in refused.value.message


def test_completions_with_a_string_prompt(target: Target, client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model=target.chat_model, prompt="The capital of France is", max_tokens=MAX, temperature=0
    )
    assert reply.object == "text_completion"
    assert isinstance(reply.choices[0].text, str) and reply.choices[0].text
    assert reply.choices[0].finish_reason in ("stop", "length")
    streamed = list(
        client.completions.create(
            model=target.chat_model, prompt="One, two,", max_tokens=MAX, stream=True
        )
    )
    assert streamed[-1].choices[0].finish_reason in ("stop", "length")


def test_models_list_and_retrieve(target: Target, client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert any(i.split(":")[0] == target.chat_model.split(":")[0] for i in ids)
    model = client.models.retrieve(target.chat_model)
    assert model.id == target.chat_model and model.object == "model"
    assert model.owned_by == "library"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("no-such-model")
    assert missing.value.status_code == 404
    body = missing.value.body
    assert isinstance(body, dict) and body.get("type") == "not_found_error"


def test_embeddings_float_and_base64(target: Target) -> None:
    with openai.OpenAI(base_url=f"{target.embed_url}/v1", api_key="x", max_retries=0) as client:
        # the SDK asks for base64 by default and decodes it itself
        packed = client.embeddings.create(model=target.embed_model, input=["one", "two"])
        floats = client.embeddings.create(
            model=target.embed_model, input="one", encoding_format="float"
        )
    assert [d.index for d in packed.data] == [0, 1]
    assert len(packed.data[0].embedding) == len(floats.data[0].embedding) > 0
    assert packed.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert packed.usage.prompt_tokens > 0


def test_errors_have_openais_shape(target: Target, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert "not found" in missing.value.message
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model=target.chat_model, messages=[])
    body = empty.value.body
    assert isinstance(body, dict) and body.get("type") == "invalid_request_error"
