"""Domain values refuse bad input where they are built, with messages a user can act on."""

from __future__ import annotations

import pytest

from ollama_nb.domain import (
    ChatMessage,
    ChatRequest,
    EmbedRequest,
    GenerateRequest,
    GenerationOptions,
    InvalidInputError,
    KeepAlive,
    ModelName,
    ResponseFormat,
    Timings,
    validate_think,
)


@pytest.mark.parametrize(
    "name",
    [
        "llama3.2",
        "llama3.2:latest",
        "qwen3:0.6b",
        "library/llama3:8b",
        "hf.co/user/model:Q4_K_M",
        "registry.local:5000/team/model:v1",
        "nomic-embed-text",
    ],
)
def test_valid_model_names(name: str) -> None:
    assert ModelName(name).value == name


@pytest.mark.parametrize(
    "name", ["", "   ", "llama 3", "model:", ":tag", "a/b/c/d", "bad$name", "x" * 400]
)
def test_invalid_model_names_are_refused_with_a_hint(name: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        ModelName(name)
    assert "model" in str(info.value).lower()


def test_model_name_equivalence_follows_ollama() -> None:
    assert ModelName("llama3.2").matches("llama3.2:latest")
    assert ModelName("Llama3.2:Latest").matches("llama3.2")
    assert not ModelName("llama3.2:1b").matches("llama3.2")
    assert ModelName("qwen3:0.6b").tag == "0.6b"


def test_unknown_option_suggests_the_closest_key() -> None:
    with pytest.raises(
        InvalidInputError, match=r"Unknown Ollama option 'temprature'.*'temperature'"
    ):
        GenerationOptions.from_mapping({"temprature": 0.2})


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"num_ctx": "4096"}, "num_ctx.*whole number"),
        ({"num_ctx": 2.5}, "num_ctx.*whole number"),
        ({"seed": True}, "seed.*whole number"),
        ({"temperature": "hot"}, "temperature.*number"),
        ({"temperature": float("nan")}, "temperature.*finite"),
        ({"temperature": -1}, "temperature.*>= 0"),
        ({"top_p": 1.5}, "top_p.*between 0 and 1"),
        ({"stop": [1, 2]}, "stop.*strings"),
        ({"use_mmap": "yes"}, "use_mmap"),
        ({"num_ctx": 0}, "num_ctx.*positive"),
        ({"num_predict": -3}, "num_predict"),
    ],
)
def test_wrong_option_types_are_refused(options: dict[str, object], pattern: str) -> None:
    with pytest.raises(InvalidInputError, match=pattern):
        GenerationOptions.from_mapping(options)


def test_options_to_wire_and_merge() -> None:
    base = GenerationOptions.from_mapping({"temperature": 1, "num_ctx": 4096, "stop": "END"})
    assert base.to_wire() == {"temperature": 1.0, "num_ctx": 4096, "stop": ["END"]}
    merged = base.merged(GenerationOptions(temperature=0.1, seed=7))
    assert merged.to_wire() == {"temperature": 0.1, "num_ctx": 4096, "seed": 7, "stop": ["END"]}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (300, 300.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("-1", -1.0),
        (-1, -1.0),
        ("300ms", 0.3),
        ("0", 0.0),
        ("2.5", 2.5),
    ],
)
def test_keep_alive_accepts_seconds_and_go_durations(value: object, seconds: float) -> None:
    assert KeepAlive(value).seconds == pytest.approx(seconds)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["five minutes", "5x", "", True, None, [1]])
def test_keep_alive_rejects_nonsense(value: object) -> None:
    with pytest.raises(InvalidInputError, match="keep_alive"):
        KeepAlive(value)  # type: ignore[arg-type]


def test_keep_alive_negative_means_forever() -> None:
    assert KeepAlive("-5m").forever
    assert not KeepAlive("5m").forever


def test_format_and_think_validation() -> None:
    assert ResponseFormat("json").to_wire() == "json"
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    assert ResponseFormat(schema).to_wire() == schema
    with pytest.raises(InvalidInputError, match="JSON schema"):
        ResponseFormat({"hello": "world"})
    with pytest.raises(InvalidInputError, match="format must be"):
        ResponseFormat("xml")  # type: ignore[arg-type]
    assert validate_think("high") == "high"
    with pytest.raises(InvalidInputError, match="think"):
        validate_think("max")


def test_empty_prompt_is_refused() -> None:
    model = ModelName("llama3.2")
    with pytest.raises(InvalidInputError, match="prompt is empty"):
        ChatRequest(model=model, messages=(ChatMessage("user", "   "),))
    with pytest.raises(InvalidInputError, match="prompt is empty"):
        GenerateRequest(model=model, prompt="")
    with pytest.raises(InvalidInputError, match="at least one message"):
        ChatRequest(model=model, messages=())
    # A load-only request is the one legitimate empty prompt.
    assert (
        GenerateRequest(model=model, prompt="", allow_empty=True).to_wire(stream=False)["prompt"]
        == ""
    )


def test_data_url_images_are_refused_in_messages() -> None:
    with pytest.raises(InvalidInputError, match="data:"):
        ChatMessage("user", "what is this", images=("data:image/png;base64,AAAA",))


def test_bad_role_and_embed_inputs() -> None:
    with pytest.raises(InvalidInputError, match="role"):
        ChatMessage("robot", "hi")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="Nothing to embed"):
        EmbedRequest(model=ModelName("nomic-embed-text"), inputs=())
    assert EmbedRequest(model=ModelName("nomic-embed-text"), inputs="one").inputs == ("one",)  # type: ignore[arg-type]


def test_chat_request_wire_shape() -> None:
    request = ChatRequest(
        model=ModelName("llama3.2"),
        messages=(ChatMessage("system", "be brief"), ChatMessage("user", "hi", images=("QUJD",))),
        options=GenerationOptions(temperature=0.0),
        format=ResponseFormat("json"),
        think=False,
        keep_alive=KeepAlive("10m"),
    )
    assert request.to_wire(stream=True) == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi", "images": ["QUJD"]},
        ],
        "options": {"temperature": 0.0},
        "format": "json",
        "think": False,
        "keep_alive": "10m",
        "stream": True,
    }
    assert request.image_count == 1


def test_timings_derivations() -> None:
    t = Timings.from_wire(
        {
            "total_duration": 2_000_000_000,
            "load_duration": 1_500_000_000,
            "prompt_eval_count": 10,
            "prompt_eval_duration": 100_000_000,
            "eval_count": 50,
            "eval_duration": 500_000_000,
        }
    )
    assert t.decode_tps == pytest.approx(100.0)
    assert t.prompt_tps == pytest.approx(100.0)
    assert t.cold_load
    assert not Timings(load_ns=5_000_000).cold_load
    assert Timings().decode_tps is None
