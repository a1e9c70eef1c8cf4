"""GGUF validation, model configuration and the memory check: no llama.cpp needed."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from ollama_nb.domain import ConfigurationError
from ollama_nb.embedded import (
    EmbeddedConfig,
    GgufError,
    ModelTooLargeError,
    check_memory,
    launcher_path,
    parse_model_list,
    read_gguf,
)
from ollama_nb.embedded.llama_engine import (
    StopFilter,
    completion_prompt,
    gemma_prompt,
    merged_options,
)
from ollama_nb.embedded.models import ModelSpec, card_for, folder_models
from ollama_nb.notebook.embedded_commands import describe_backend
from ollama_nb.serving.engine import EngineMessage
from ollama_nb.testing import StandinHandle


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(
    path: Path, metadata: dict[str, object], tensors: tuple[tuple[int, ...], ...] = ()
) -> Path:
    """A GGUF header written by the spec: magic, version, counts, key/values, tensor table."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)))
    for key, value in metadata.items():
        out += _string(key)
        if isinstance(value, str):
            out += struct.pack("<I", 8) + _string(value)
        elif isinstance(value, list):
            out += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(_string(v) for v in value)
        else:
            assert isinstance(value, int)
            out += struct.pack("<II", 4, value)
    for i, dims in enumerate(tensors):
        out += _string(f"blk.{i}.weight") + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", 12, 0)
    path.write_bytes(bytes(out))
    return path


TINY = {
    "general.architecture": "llama",
    "general.file_type": 15,
    "llama.context_length": 8192,
    "llama.embedding_length": 1024,
    "llama.block_count": 16,
    "llama.attention.head_count": 16,
    "llama.attention.head_count_kv": 4,
    "tokenizer.ggml.tokens": ["<s>", "</s>", "a"],
    "tokenizer.chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}",
}


def test_a_valid_header_becomes_a_model_card(tmp_path: Path) -> None:
    info = read_gguf(write_gguf(tmp_path / "Tiny Model.Q4.gguf", TINY, ((1024, 4096), (7,))))
    assert info.architecture == "llama"
    assert info.context_length == 8192
    assert info.metadata["tokenizer.ggml.tokens"] == 3  # vocabularies kept as lengths
    card = card_for(ModelSpec("tiny:latest", info.path), info)
    assert card.engine == "llamacpp"
    assert card.capabilities == frozenset({"completion"})
    assert card.quantization_level == "Q4_K_M"
    assert card.parameter_count == 1024 * 4096 + 7 and card.parameter_size == "4.19M"
    assert card.template == TINY["tokenizer.chat_template"]


def test_kv_cache_arithmetic(tmp_path: Path) -> None:
    info = read_gguf(write_gguf(tmp_path / "m.gguf", TINY))
    # 16 layers x 4 kv heads x (64 + 64) dims x 2 bytes per token
    assert info.kv_cache_bytes(4096) == 16 * 4 * 128 * 2 * 4096


def test_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(GgufError, match=r"does not exist\. Check the path"):
        read_gguf(tmp_path / "nope.gguf")


def test_a_file_that_is_not_gguf_says_what_it_starts_with(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(
        GgufError, match=r"is not a GGUF file \(it starts with b'PK\\x03\\x04'"
    ) as e:
        read_gguf(bad)
    assert "complete" not in str(e.value)


def test_a_truncated_header_is_reported_as_incomplete(tmp_path: Path) -> None:
    good = write_gguf(tmp_path / "m.gguf", TINY).read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good[:40])
    with pytest.raises(GgufError, match="is not a complete GGUF file"):
        read_gguf(cut)


def test_a_directory_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(GgufError, match="is not a file"):
        read_gguf(tmp_path)


def test_memory_check_refuses_with_the_arithmetic(tmp_path: Path) -> None:
    info = read_gguf(write_gguf(tmp_path / "m.gguf", TINY))
    with pytest.raises(ModelTooLargeError) as caught:
        check_memory("tiny:latest", info, 4096, available=100 * 1024**2)
    text = str(caught.value)
    assert "model requires more system memory (0.19 GiB) than is available (0.10 GiB)" in text
    assert "KV cache for num_ctx 4096 0.06 GiB" in text
    assert check_memory("tiny:latest", info, 4096, available=1024**3) > info.kv_cache_bytes(4096)


def test_model_list_takes_paths_and_named_paths(tmp_path: Path) -> None:
    specs = parse_model_list("/m/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf:phi=/m/phi.gguf:")
    assert [(s.name, str(s.path)) for s in specs] == [
        ("qwen2.5-0.5b-instruct-q4_k_m:latest", "/m/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf"),
        ("phi:latest", "/m/phi.gguf"),
    ]


def test_models_folder_lists_gguf_files_and_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    write_gguf(tmp_path / "b.gguf", TINY)
    write_gguf(tmp_path / "a.gguf", TINY)
    (tmp_path / "notes.txt").write_text("x")
    assert [s.name for s in folder_models(tmp_path)] == ["a:latest", "b:latest"]
    with pytest.raises(GgufError, match=r"folder .* does not exist"):
        EmbeddedConfig.from_environ({"OLLAMA_NB_EMBEDDED_MODELS_DIR": str(tmp_path / "gone")})


def test_gemma_turn_format_puts_system_into_the_first_user_turn() -> None:
    prompt = gemma_prompt(
        (EngineMessage("system", "Be brief."), EngineMessage("user", "Hi"),
         EngineMessage("assistant", "Hello"), EngineMessage("user", "Bye"))
    )  # fmt: skip
    assert prompt == (
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
    )


def test_a_base_model_sees_the_conversation_as_one_document() -> None:
    assert completion_prompt((EngineMessage("user", "The sky is"),)) == "The sky is"
    prompt = completion_prompt(
        (EngineMessage("system", "Notes on weather."), EngineMessage("user", "The sky is"),
         EngineMessage("assistant", " blue today."), EngineMessage("user", "Clouds form when"))
    )  # fmt: skip
    assert prompt == "Notes on weather.\n\nThe sky is blue today.\n\nClouds form when"


def test_a_base_model_card_caps_answers_and_requests_override_it(tmp_path: Path) -> None:
    base = {k: v for k, v in TINY.items() if k != "tokenizer.chat_template"}
    info = read_gguf(write_gguf(tmp_path / "base.gguf", base))
    card = card_for(ModelSpec("base:latest", info.path), info)
    assert "{{ .Prompt }}{{ .Response }}" in card.template
    assert merged_options(card, {})["num_predict"] == 128
    assert merged_options(card, {"num_predict": 500})["num_predict"] == 500
    uncapped = card_for(ModelSpec("base:latest", info.path), info, base_num_predict=-1)
    assert merged_options(uncapped, {})["num_predict"] == -1  # Ollama's own default
    instruct = card_for(ModelSpec("tiny:latest", info.path), read_gguf(
        write_gguf(tmp_path / "tiny.gguf", TINY)))  # fmt: skip
    assert merged_options(instruct, {})["num_predict"] == -1
    env = {"OLLAMA_NB_EMBEDDED_NUM_PREDICT": "64"}
    assert EmbeddedConfig.from_environ(env).base_num_predict == 64
    with pytest.raises(ConfigurationError, match="NUM_PREDICT='lots' is not a token count"):
        EmbeddedConfig.from_environ({"OLLAMA_NB_EMBEDDED_NUM_PREDICT": "lots"})


def test_gemma_parameters_become_options_with_stop_as_a_list(tmp_path: Path) -> None:
    gemma = {k.replace("llama.", "gemma3."): v for k, v in TINY.items()}
    gemma["general.architecture"] = "gemma3"
    info = read_gguf(write_gguf(tmp_path / "g.gguf", gemma))
    options = merged_options(card_for(ModelSpec("g:latest", info.path), info), {"top_k": 5})
    assert options["stop"] == ["<end_of_turn>"]
    assert (options["temperature"], options["top_k"], options["top_p"]) == (1, 5, 0.95)


def test_stop_filter_holds_back_a_possible_stop_and_cuts_at_a_match() -> None:
    f = StopFilter(["END"])
    assert f.feed("abc E") == ("abc ", False)
    assert f.feed("N") == ("", False)
    assert f.feed("X more") == ("ENX more", False)
    assert f.feed(" then EN") == (" then ", False)
    assert f.feed("D tail") == ("", True)


def test_launcher_runs_this_interpreter(tmp_path: Path) -> None:
    path = launcher_path(tmp_path)
    text = path.read_text()
    assert "-m ollama_nb.embedded" in text
    assert path.stat().st_mode & 0o111
    assert launcher_path(tmp_path) == path  # rewriting is idempotent


def test_backend_description_names_what_serves() -> None:
    assert describe_backend("0.13.0-embedded").startswith("embedded: llama.cpp")
    assert "smollm2:135m (SmolLM2-135M-Instruct) answers" in describe_backend("0.13.0-embedded")
    capped = describe_backend("0.13.0-embedded", {"mybase:latest": 128})
    assert "mybase:latest: answers stop after 128 tokens by default" in capped
    assert describe_backend("0.13.0-standin").startswith("stand-in")
    assert describe_backend("0.12.6") == "Ollama 0.12.6"


def test_status_and_backend_commands_name_the_stand_in(ollama_standin: StandinHandle) -> None:
    from tests.magics.conftest import make_shell

    for shell in make_shell(ollama_standin.url, ollama_standin):
        status = shell.run("%ollama status")
        assert "Backend" in repr(status)
        assert "stand-in: scripted replies for tests" in repr(status)
        assert shell.run("%ollama backend").startswith("stand-in: scripted replies")


def test_schema_strings_cannot_hold_raw_control_characters() -> None:
    pytest.importorskip("llama_cpp", reason='the embedded extra: pip install -e ".[embedded]"')
    from llama_cpp.llama_grammar import LlamaGrammar

    from ollama_nb.embedded.llama_engine import STRICT_JSON_CHAR, schema_grammar

    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    grammar = schema_grammar(schema)
    assert [line for line in grammar.splitlines() if line.startswith("char ::=")] == [
        STRICT_JSON_CHAR
    ]
    assert r"\x00-\x1F" in STRICT_JSON_CHAR
    LlamaGrammar.from_string(grammar, verbose=False)  # llama.cpp's parser accepts it
