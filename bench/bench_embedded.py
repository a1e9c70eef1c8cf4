"""Tokens/s of the embedded backend: our HTTP server + client vs llama-cpp-python in-process.

Both sides run the same GGUF (the default, smollm2:135m), the same prompt rendered with the
model's own chat template, greedy sampling
(so both produce the same tokens) and the same ``num_predict``, with the same context size
and thread count. The server runs in its own process, as ``%ollama start`` runs it; rounds
alternate the two paths so drift on a shared machine hits both alike. Reported per path:
median decode tokens/s measured where the tokens arrive (the notebook's client, or the
direct loop), median end-to-end tokens/s (request sent -> last token), and the ratio of
ours to direct (target: within 5 %).

    python bench/bench_embedded.py [--rounds 5] [--tokens 128]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

import ollama_nb
from ollama_nb.embedded import DEFAULT_MODEL, default_model_path, read_gguf
from ollama_nb.embedded.llama_engine import (
    DEFAULT_NUM_CTX,
    LoadSpec,
    _new_llama,
    template_prompt,
)
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.serving.engine import EngineMessage
from ollama_nb.settings import load_settings

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(threads: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_KEEP_ALIVE": "-1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ollama_nb.embedded", "serve"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/api/version", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the embedded server did not start within 60 s")


def ours(tokens: int, threads: int) -> tuple[float, float, int]:
    """Decode tokens/s and end-to-end tokens/s seen by ollama_nb's client."""
    arrivals: list[float] = []
    sent = time.perf_counter()
    result = ollama_nb.chat(
        PROMPT,
        model=DEFAULT_MODEL,
        options={"num_predict": tokens, "temperature": 0, "num_thread": threads},
        on_chunk=lambda chunk: arrivals.append(time.perf_counter()) if chunk.content else None,
    )
    count = result.timings.eval_count  # tokens; a chunk may carry two (split UTF-8)
    decode = (count - 1) / (arrivals[-1] - arrivals[0])
    return decode, count / (arrivals[-1] - sent), count


def direct(llama: object, tokens: int) -> tuple[float, float, int]:
    """The same generation with llama-cpp-python in this process, no HTTP."""
    import llama_cpp

    template = read_gguf(default_model_path()).chat_template
    text = template_prompt(llama, template, (EngineMessage("user", PROMPT),))
    started = time.perf_counter()
    ids = llama.tokenize(text.encode(), add_bos=True, special=True)  # type: ignore[attr-defined]
    vocab = llama._model.vocab  # type: ignore[attr-defined]
    arrivals: list[float] = []
    for token in llama.generate(ids, top_k=40, top_p=0.9, min_p=0.0, temp=0.0, repeat_penalty=1.1):  # type: ignore[attr-defined]
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            break
        llama.detokenize([token])  # type: ignore[attr-defined]
        arrivals.append(time.perf_counter())
        if len(arrivals) >= tokens:
            break
    decode = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return decode, len(arrivals) / (arrivals[-1] - started), len(arrivals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    # Built exactly as the server builds it (same context, batch, threads, buffers).
    spec = LoadSpec(str(default_model_path()), DEFAULT_NUM_CTX, args.threads, True, False)
    llama = _new_llama(spec)
    proc, url = start_server(args.threads)
    with tempfile.TemporaryDirectory() as data_dir:
        # No response cache: every round must be generated, not served from the first.
        settings = load_settings(
            host=url, data_dir=Path(data_dir), request_log=False, response_cache=False
        )
        runtime = Runtime(settings)
        set_runtime(runtime)
        try:
            ours(8, args.threads)  # load the model in the server and warm both paths
            direct(llama, 8)
            rows: dict[str, list[tuple[float, float, int]]] = {"ours": [], "direct": []}
            for i in range(args.rounds):
                order = ("ours", "direct") if i % 2 == 0 else ("direct", "ours")
                for name in order:
                    rows[name].append(
                        ours(args.tokens, args.threads)
                        if name == "ours"
                        else direct(llama, args.tokens)
                    )
        finally:
            runtime.close()
            proc.terminate()
            proc.wait(10)
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
           for k, v in rows.items()}  # fmt: skip
    print(f"{DEFAULT_MODEL}, {args.tokens} tokens, {args.threads} threads, {args.rounds} rounds")
    print(f"{'path':<34}{'decode tok/s':>14}{'end-to-end tok/s':>18}{'tokens':>8}")
    labels = {"ours": "HTTP server + ollama_nb client", "direct": "llama-cpp-python in-process"}
    for name, (decode, e2e) in med.items():
        count = rows[name][-1][2]
        print(f"{labels[name]:<34}{decode:>14.1f}{e2e:>18.1f}{count:>8}")
    ratio_decode = med["ours"][0] / med["direct"][0]
    ratio_e2e = med["ours"][1] / med["direct"][1]
    print(f"{'ours / direct':<34}{ratio_decode:>14.3f}{ratio_e2e:>18.3f}")
    verdict = "within" if ratio_decode >= 0.95 else "NOT within"
    print(f"decode speed {verdict} 5 % of direct (target >= 0.950)")


if __name__ == "__main__":
    main()
