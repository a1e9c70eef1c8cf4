"""Trying a grammar in a throw-away process before the server's own llama.cpp takes it.

A JSON schema with a large ``maxLength`` becomes that many nested optional grammar rules;
llama.cpp fails to parse such a grammar and returns no sampler, and llama-cpp-python adds
that null sampler to its chain anyway: SIGSEGV, and every request in flight is lost. The
HTTP layer refuses the schemas we know to be dangerous (:mod:`ollama_nb.serving.schemas`);
this is the second wall, for the ones we do not know of: each distinct grammar is parsed
first by a child process that loads only the model's vocabulary (no weights). A grammar
llama.cpp rejects is answered 400, one that kills the child 500; both are remembered, and
only a grammar the child parsed reaches the server's model.

Run as ``python -m ollama_nb.embedded.grammar_check MODEL.gguf`` with the grammar on
standard input; the exit status is the verdict.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading

from ..serving.wire import ApiError

_PARSED = 0
_REJECTED = 3
_TIMEOUT_S = 120.0
_verdicts: dict[str, int] = {}
_lock = threading.Lock()


def check_grammar(model_path: str, grammar: str) -> None:
    """Raise an :class:`ApiError` unless llama.cpp parses ``grammar`` without crashing."""
    key = hashlib.sha256(f"{model_path}\0{grammar}".encode()).hexdigest()
    with _lock:
        verdict = _verdicts.get(key)
    if verdict is None:
        verdict = _try_in_child(model_path, grammar)
        with _lock:
            _verdicts[key] = verdict
    if verdict == _PARSED:
        return
    if verdict == _REJECTED:
        raise ApiError(
            400,
            "invalid format: llama.cpp cannot parse the grammar this schema makes "
            "(too large or too deeply nested); simplify the schema",
        )
    what = f"signal {-verdict}" if verdict < 0 else f"status {verdict}"
    raise ApiError(
        500,
        f"the grammar for this format could not be checked safely ({what} in a test "
        "process), so it was not used; the server keeps running",
    )


def _try_in_child(model_path: str, grammar: str) -> int:
    try:
        done = subprocess.run(
            [sys.executable, "-m", __name__, model_path],
            input=grammar.encode(),
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -9
    return done.returncode


def _parse(model_path: str, grammar: bytes) -> int:
    """In the child: load the vocabulary alone and let llama.cpp parse the grammar."""
    import llama_cpp

    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(model_path.encode(), params)
    if not model:
        return 4
    try:
        vocab = llama_cpp.llama_model_get_vocab(model)
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar, b"root")
        if not sampler:
            return _REJECTED
        llama_cpp.llama_sampler_free(sampler)
        return _PARSED
    finally:
        llama_cpp.llama_model_free(model)


if __name__ == "__main__":
    sys.exit(_parse(sys.argv[1], sys.stdin.buffer.read()))
