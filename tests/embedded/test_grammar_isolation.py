"""A grammar that crashes llama.cpp crashes a throw-away process, not the server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ollama_nb.embedded import DEFAULT_MODEL
from ollama_nb.embedded.grammar_check import check_grammar
from ollama_nb.serving import Server
from ollama_nb.serving.wire import ApiError

from .conftest import NO_LLAMA

pytestmark = NO_LLAMA


def _gbnf(schema: dict[str, object]) -> str:
    from llama_cpp.llama_grammar import LlamaGrammar

    return str(LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)._grammar)


def test_the_child_parses_or_rejects_what_would_crash_the_server(embedded: Server) -> None:
    model = embedded.config.models[0].engine_source
    check_grammar(model, _gbnf({"type": "string", "maxLength": 20}))
    # Past the HTTP layer's bound: llama.cpp cannot parse it, and in the server's process
    # llama-cpp-python would then add a null sampler and die of SIGSEGV.
    deep = _gbnf({"type": "string", "maxLength": 4000})
    with pytest.raises(ApiError) as rejected:
        check_grammar(model, deep)
    assert rejected.value.status == 400 and "cannot parse" in rejected.value.message
    with pytest.raises(ApiError) as broken:
        check_grammar(model, 'root ::= "unterminated')
    assert broken.value.status == 400


def test_a_child_that_dies_is_a_500(embedded: Server, tmp_path: Path) -> None:
    not_a_model = tmp_path / "empty.gguf"
    not_a_model.write_bytes(b"")
    with pytest.raises(ApiError) as failed:
        check_grammar(str(not_a_model), 'root ::= "x"')
    assert failed.value.status == 500 and "server keeps running" in failed.value.message


def test_a_schema_format_still_constrains_the_answer(client: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    body = {"model": DEFAULT_MODEL, "prompt": "Answer as JSON:", "stream": False,
            "format": schema, "options": {"num_predict": 16, "temperature": 0}}  # fmt: skip
    reply = client.post("/api/generate", json=body)
    assert reply.status_code == 200, reply.text
    assert isinstance(json.loads(reply.json()["response"])["ok"], bool)
