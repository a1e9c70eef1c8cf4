"""The llama.cpp engine behind the stand-in's HTTP layer: real tokens, real timings.

llama.cpp contexts are not thread-safe, so each loaded model owns a one-thread executor:
every blocking call for that model (load, tokenize, prompt eval, sampling, unload) runs
there, one after another, and tokens travel back to the event loop through a queue. A
client that disconnects sets the request's stop flag; the worker notices before the next
token and the next request can start (the HTTP layer's slot is already free by then).

Options follow Ollama: its defaults, then the model's own parameters, then the request's.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import os
import random
import threading
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..serving.catalogue import ModelCard
from ..serving.engine import (
    Embedding,
    EngineMessage,
    Finish,
    GenerationRequest,
    JsonValue,
    Piece,
)
from ..serving.wire import ApiError
from .gguf import GgufInfo
from .grammar_check import check_grammar
from .models import ModelTooLargeError, check_memory

log = logging.getLogger("ollama_nb.embedded")

DEFAULT_NUM_CTX = 4096
"""Ollama's default context length on small machines (the HTTP layer reports the same)."""

#: Ollama's sampling defaults (api.DefaultOptions), before model and request options.
OLLAMA_DEFAULTS: dict[str, object] = {
    "temperature": 0.8, "top_k": 40, "top_p": 0.9, "min_p": 0.0, "repeat_penalty": 1.1,
    "repeat_last_n": 64, "presence_penalty": 0.0, "frequency_penalty": 0.0,
    "num_predict": -1,
}  # fmt: skip
KEEP_TOKENS = 4
"""Tokens kept from the start of a truncated prompt (BOS and the turn header)."""


def context_error(prompt_tokens: int, num_ctx: int) -> ApiError:
    """The 400 Ollama answers when ``truncate`` is false and the prompt does not fit."""
    return ApiError(
        400,
        f"request ({prompt_tokens} tokens) exceeds the available context size "
        f"({num_ctx} tokens), try increasing it",
    )


def gemma_prompt(messages: Sequence[EngineMessage]) -> str:
    """Gemma's turn format; a system message is prepended to the next user turn."""
    out: list[str] = []
    system = ""
    for m in messages:
        if m.role == "system":
            system = f"{system}{m.content}\n\n"
            continue
        role = "model" if m.role == "assistant" else "user"
        content = m.content
        if role == "user" and system:
            content, system = f"{system}{content}", ""
        out.append(f"<start_of_turn>{role}\n{content}<end_of_turn>\n")
    if system:
        out.append(f"<start_of_turn>user\n{system.rstrip()}<end_of_turn>\n")
    out.append("<start_of_turn>model\n")
    return "".join(out)


def completion_prompt(messages: Sequence[EngineMessage]) -> str:
    """A base model's conversation as one document (``models.COMPLETION_TEMPLATE``).

    Rendered the way Ollama renders a template without ``.Messages``: system text, then
    each prompt followed by the answer that continued it, then the last prompt, so a
    follow-up continues the text the model already wrote.
    """
    parts: list[str] = []
    system = prompt = response = ""

    def turn() -> None:
        nonlocal system, prompt, response
        head = f"{system}\n\n" if system else ""
        parts.append(f"{head}{prompt}{response}\n\n")
        system = prompt = response = ""

    for m in messages:
        if m.role == "system":
            if prompt or response:
                turn()
            system = m.content
        elif m.role == "user":
            if response:
                turn()
            prompt = m.content
        elif m.role == "assistant":
            response = m.content
    parts.append(f"{system}\n\n{prompt}" if system else prompt)
    return "".join(parts)


def model_parameters(text: str) -> dict[str, object]:
    """A Modelfile ``parameters`` block as options (``stop`` may repeat: it is a list)."""
    out: dict[str, object] = {}
    for line in text.splitlines():
        key, _, raw = line.strip().partition(" ")
        raw = raw.strip()
        if not key or not raw:
            continue
        try:
            value: object = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if key == "stop":
            stops = out.setdefault("stop", [])
            assert isinstance(stops, list)
            stops.append(str(value))
        else:
            out[key] = value
    return out


def merged_options(card: ModelCard, options: Mapping[str, JsonValue]) -> dict[str, object]:
    """Ollama's defaults, then the model's parameters, then the request's options."""
    merged = dict(OLLAMA_DEFAULTS)
    merged.update(model_parameters(card.parameters))
    merged.update(options)
    return merged


def _num(options: Mapping[str, object], key: str, default: float) -> float:
    value = options.get(key, default)
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def num_ctx_for(card: ModelCard, options: Mapping[str, JsonValue]) -> int:
    """The context a load uses: the request's ``num_ctx`` or the server default."""
    value = options.get("num_ctx")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    return min(DEFAULT_NUM_CTX, card.context_length)


class StopFilter:
    """Holds back text that might be the start of a stop sequence; cuts at a full match."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Text safe to emit now, and whether a stop sequence was reached."""
        self._pending += text
        cut = min((i for s in self._stops if (i := self._pending.find(s)) >= 0), default=-1)
        if cut >= 0:
            out, self._pending = self._pending[:cut], ""
            return out, True
        hold = 0
        for s in self._stops:
            for n in range(min(len(s) - 1, len(self._pending)), 0, -1):
                if self._pending.endswith(s[:n]):
                    hold = max(hold, n)
                    break
        out = self._pending[: len(self._pending) - hold]
        self._pending = self._pending[len(out) :]
        return out, False

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return out


@dataclass(slots=True)
class _Loaded:
    llama: Any
    num_ctx: int
    memory_bytes: int
    executor: ThreadPoolExecutor


@dataclass(slots=True)
class _Run:
    """One generation's channel between the worker thread and the event loop."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[object]
    stop: threading.Event = field(default_factory=threading.Event)

    def put(self, item: object) -> bool:
        """Hand ``item`` to the loop; ``False`` once nobody is listening any more."""
        if self.stop.is_set():
            return False
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the server's loop closed under us
            self.stop.set()
            return False
        return True


class LlamaEngine:
    """An :class:`~ollama_nb.serving.engine.Engine` running GGUF models in-process."""

    def __init__(
        self,
        infos: Mapping[str, GgufInfo],
        *,
        memory_available: Callable[[], int],
        n_threads: int | None = None,
    ) -> None:
        self._infos = dict(infos)
        self._memory_available = memory_available
        self._n_threads = n_threads or max(1, os.cpu_count() or 1)
        self._loaded: dict[str, _Loaded] = {}

    def memory_bytes(self, card: ModelCard) -> int | None:
        """Estimated resident size of a loaded model (weights + KV cache + runtime)."""
        entry = self._loaded.get(card.name)
        return entry.memory_bytes if entry else None

    def vram_bytes(self, card: ModelCard) -> int:
        """Nothing: every layer runs on the CPU (no ``n_gpu_layers`` offload)."""
        return 0

    def _info(self, card: ModelCard) -> GgufInfo:
        info = self._infos.get(card.name)
        if info is None:  # a copy made with /api/copy: same file, new name
            info = next(i for i in self._infos.values() if str(i.path) == card.engine_source)
        return info

    async def load(self, card: ModelCard, options: Mapping[str, JsonValue]) -> float:
        """Check memory (refusing with the arithmetic), then load the GGUF on its own thread."""
        began = time.perf_counter()
        await self.unload(card)
        info = self._info(card)
        num_ctx = num_ctx_for(card, options)
        try:
            need = check_memory(card.name, info, num_ctx, self._memory_available())
        except ModelTooLargeError as exc:
            raise ApiError(500, str(exc)) from None
        executor = ThreadPoolExecutor(1, thread_name_prefix=f"llama-{card.name}")
        threads = options.get("num_thread")
        spec = LoadSpec(
            model_path=str(info.path),
            n_ctx=num_ctx,
            n_threads=threads if isinstance(threads, int) and threads > 0 else self._n_threads,
            use_mmap=options.get("use_mmap", True) is not False,
            embedding=info.is_embedding_model,
        )
        try:
            llama = await asyncio.get_running_loop().run_in_executor(executor, _new_llama, spec)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._loaded[card.name] = _Loaded(llama, num_ctx, need, executor)
        return time.perf_counter() - began

    async def unload(self, card: ModelCard) -> None:
        """Free the context and weights on the model's own thread (after any running step)."""
        entry = self._loaded.pop(card.name, None)
        if entry is None:
            return
        await asyncio.get_running_loop().run_in_executor(entry.executor, entry.llama.close)
        entry.executor.shutdown(wait=False)

    async def embed(self, card: ModelCard, texts: Sequence[str]) -> list[Embedding]:
        """Pooled embeddings from an embedding GGUF; completion models answer 400."""
        if not self._info(card).is_embedding_model:
            raise ApiError(400, f'"{card.name}" does not support embeddings')
        entry = self._loaded[card.name]

        def work() -> list[Embedding]:
            out = []
            for text in texts:
                tokens = entry.llama.tokenize(text.encode(), add_bos=True, special=False)
                vector = entry.llama.embed(text)
                out.append(Embedding(vector=list(vector), tokens=len(tokens)))
            return out

        return await asyncio.get_running_loop().run_in_executor(entry.executor, work)

    async def generate(
        self, card: ModelCard, request: GenerationRequest
    ) -> AsyncGenerator[Piece | Finish, None]:
        """Stream real tokens; raises an ``ApiError`` (before any token) for bad requests."""
        entry = self._loaded[card.name]
        loop = asyncio.get_running_loop()
        run = _Run(loop, asyncio.Queue())
        prompt = _with_context(self._prompt(card, request), request.context)
        options = merged_options(card, request.options)
        grammar_spec = request.format
        future = loop.run_in_executor(
            entry.executor, _generate_blocking, entry, prompt, options, grammar_spec,
            request.truncate, run,
        )  # fmt: skip
        try:
            while True:
                item = await run.queue.get()
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, Piece | Finish)
                yield item
                if isinstance(item, Finish):
                    return
        finally:
            run.stop.set()  # the worker ends before its next token
            del future  # it only ever reports through the queue

    def _prompt(self, card: ModelCard, request: GenerationRequest) -> Callable[[Any], str]:
        """How to render the request as text, given the loaded model (run on its thread)."""
        messages = request.messages
        if request.raw:
            text = messages[-1].content if messages else ""
            return lambda llama: text
        info = self._info(card)
        if not info.chat_template:  # a base model: the card has the completion template
            text = completion_prompt(messages)
            return lambda llama: text
        if info.architecture.startswith("gemma"):
            text = gemma_prompt(messages)
            return lambda llama: text
        template = info.chat_template
        return lambda llama: template_prompt(llama, template, messages)


def _with_context(render: Callable[[Any], str], context: tuple[int, ...]) -> Callable[[Any], str]:
    """Put an earlier answer's ``context`` (token ids) before the new prompt, as Ollama does."""
    if not context:
        return render

    def rendered(llama: Any) -> str:
        vocab = int(llama.n_vocab())
        bad = next((t for t in context if t >= vocab), None)
        if bad is not None:
            raise ApiError(400, f"invalid context: token id {bad} is not in the vocabulary")
        ids = list(context)
        if ids and ids[0] == llama.token_bos():  # the new prompt brings its own
            ids = ids[1:]
        earlier = str(llama.detokenize(ids, special=True).decode("utf-8", "replace"))
        return earlier + render(llama)

    return rendered


def template_prompt(llama: Any, template: str, messages: Sequence[EngineMessage]) -> str:
    """Render with the GGUF's own chat template, as llama-cpp-python's server does."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    model = llama._model  # the token texts live on the low-level model only
    bos = model.token_get_text(llama.token_bos()) if llama.token_bos() >= 0 else ""
    eos = model.token_get_text(llama.token_eos()) if llama.token_eos() >= 0 else ""
    formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
    chat: list[Any] = [{"role": m.role, "content": m.content} for m in messages]
    rendered = formatter(messages=chat)
    return str(rendered.prompt)


EXTRA_BUFFERS_ENV = "OLLAMA_NB_EMBEDDED_EXTRA_BUFFERS"
_patch_lock = threading.Lock()


def _without_extra_buffers() -> None:
    """Make every later model load skip llama.cpp's extra buffer types (AMX, repacking).

    Some virtual machines advertise Intel AMX in CPUID but trap its instructions, which
    kills the process with SIGILL inside a native AMX build. Llama() exposes no switch for
    ``use_extra_bufts``, so its default-params factory is wrapped (once, process-wide).
    """
    import llama_cpp.llama_cpp as low

    with _patch_lock:
        original = low.llama_model_default_params
        if getattr(original, "_ollama_nb_no_extra", False):
            return

        def defaults() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        defaults._ollama_nb_no_extra = True  # type: ignore[attr-defined]
        low.llama_model_default_params = defaults


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What a load passes to ``llama_cpp.Llama`` (the load-time options Ollama knows)."""

    model_path: str
    n_ctx: int
    n_threads: int
    use_mmap: bool
    embedding: bool


def _new_llama(spec: LoadSpec) -> Any:
    from llama_cpp import Llama

    if os.environ.get(EXTRA_BUFFERS_ENV, "1").strip().lower() in ("0", "false", "no"):
        _without_extra_buffers()
    return Llama(
        model_path=spec.model_path,
        n_ctx=spec.n_ctx,
        n_batch=min(512, spec.n_ctx),
        n_threads=spec.n_threads,
        use_mmap=spec.use_mmap,
        embedding=spec.embedding,
        verbose=False,
    )


#: JSON's string character as llama.cpp's own schema converter (and so Ollama) writes it.
#: llama-cpp-python's port allows any character but quote and backslash, so a model could
#: put a raw newline inside a string and the "JSON" would not parse.
STRICT_JSON_CHAR = (
    r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] '
    "[0-9a-fA-F] [0-9a-fA-F])"
)


def schema_grammar(schema: object) -> str:
    """GBNF for a JSON schema whose strings hold no raw control characters."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    lines = json_schema_to_gbnf(json.dumps(schema)).splitlines()
    return "\n".join(STRICT_JSON_CHAR if line.startswith("char ::=") else line for line in lines)


def _grammar(spec: object, model_path: str) -> Any:
    """The sampling grammar for ``format``; a schema's is first parsed in a child process."""
    if spec is None:
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if spec == "json":
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    try:
        grammar = LlamaGrammar.from_string(schema_grammar(spec), verbose=False)
    except Exception as exc:  # the converter's own refusals (a dangling $ref, a bad type)
        raise ApiError(400, f"invalid format schema: {exc}") from exc
    check_grammar(model_path, grammar._grammar)
    return grammar


def _evaluate_prompt(llama: Any, tokens: list[int], *, fresh: bool, stop: threading.Event) -> bool:
    """Evaluate all but the last prompt token, one batch at a time; ``False`` if cancelled.

    ``Llama.generate`` evaluates a whole prompt in one call that cannot be interrupted, so
    a client that left during a long prompt kept the model busy for seconds. Done here in
    batches, with the stop flag checked between them, ``generate`` then finds the prompt
    already in the KV cache and evaluates only its last token.
    """
    body = tokens[:-1]
    start = 0
    if fresh or llama.n_tokens == 0:
        llama.reset()
    else:
        for cached, wanted in zip(llama.input_ids[: llama.n_tokens], body, strict=False):
            if cached != wanted:
                break
            start += 1
        llama.n_tokens = start  # eval() drops the cache past this point
    step = max(1, int(llama.n_batch))
    log.debug("evaluating a prompt of %d tokens (%d cached)", len(tokens), start)
    for i in range(start, len(body), step):
        if stop.is_set():
            log.info("prompt evaluation cancelled after %d of %d tokens", i, len(tokens))
            return False
        llama.eval(body[i : i + step])
    return not stop.is_set()


def _generate_blocking(
    entry: _Loaded,
    prompt: Callable[[Any], str],
    options: Mapping[str, object],
    grammar_spec: object,
    truncate: bool,
    run: _Run,
) -> None:
    """The worker: tokenize, fit the context, eval, sample, stream; always ends the queue."""
    try:
        _generate_steps(entry, prompt, options, grammar_spec, truncate, run)
    except ApiError as exc:
        run.put(exc)
    except Exception as exc:  # a llama.cpp failure reaches the client as a 500/error line
        run.put(ApiError(500, f"llama runner error: {exc}"))


def _generate_steps(
    entry: _Loaded,
    prompt: Callable[[Any], str],
    options: Mapping[str, object],
    grammar_spec: object,
    truncate: bool,
    run: _Run,
) -> None:
    import llama_cpp

    llama = entry.llama
    grammar = _grammar(grammar_spec, str(llama.model_path))
    text = prompt(llama)
    bos = llama.token_bos()
    tokens: list[int] = llama.tokenize(text.encode(), add_bos=True, special=True)
    if len(tokens) > 1 and tokens[0] == tokens[1] == bos:  # the template wrote BOS too
        tokens = tokens[1:]
    num_ctx = entry.num_ctx
    predict = int(_num(options, "num_predict", -1))
    if len(tokens) >= num_ctx:
        if not truncate:
            raise context_error(len(tokens), num_ctx)
        # Ollama's runner: keep the first tokens, drop the oldest after them, leaving
        # half the context free for the answer.
        room = max(num_ctx // 2, KEEP_TOKENS + 1)
        tokens = tokens[:KEEP_TOKENS] + tokens[-(room - KEEP_TOKENS) :]
    n_prompt = len(tokens)
    seed = options.get("seed")
    seeded = isinstance(seed, int) and seed >= 0
    llama.set_seed(seed if isinstance(seed, int) and seeded else random.getrandbits(31))
    # A reused KV prefix evaluates the prompt in other batch shapes, which changes the
    # logits in the last bits; a seeded or greedy request evaluates it whole so that its
    # answer does not depend on the request before it.
    fresh = seeded or _num(options, "temperature", 0.8) <= 0
    if not _evaluate_prompt(llama, tokens, fresh=fresh, stop=run.stop):
        return
    stops = options.get("stop")
    stop_filter = StopFilter(
        [s for s in stops if isinstance(s, str)] if isinstance(stops, list) else []
    )
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    vocab = llama._model.vocab  # llama-cpp-python exposes no public EOG test
    generated: list[int] = []
    reason = "stop"
    started = time.perf_counter()
    first_at: float | None = None
    tokens_iter = llama.generate(
        tokens,
        top_k=int(_num(options, "top_k", 40)),
        top_p=_num(options, "top_p", 0.9),
        min_p=_num(options, "min_p", 0.0),
        typical_p=_num(options, "typical_p", 1.0),
        temp=_num(options, "temperature", 0.8),
        repeat_penalty=_num(options, "repeat_penalty", 1.1),
        presence_penalty=_num(options, "presence_penalty", 0.0),
        frequency_penalty=_num(options, "frequency_penalty", 0.0),
        grammar=grammar,
    )
    try:
        for token in tokens_iter:
            if run.stop.is_set():
                return
            if first_at is None:
                first_at = time.perf_counter()
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            generated.append(token)
            piece = decoder.decode(llama.detokenize([token], prev_tokens=tokens + generated[:-1]))
            out, stopped = stop_filter.feed(piece)
            if out and not run.put(Piece(content=out)):
                return
            if stopped:
                break
            if 0 < predict <= len(generated) or llama.n_tokens + 1 >= num_ctx:
                reason = "length"
                break
    finally:
        tokens_iter.close()
    end = time.perf_counter()
    rest = stop_filter.flush() + decoder.decode(b"", final=True)
    if rest:
        run.put(Piece(content=rest))
    first = first_at if first_at is not None else end
    run.put(
        Finish(
            "length" if reason == "length" else "stop",
            n_prompt,
            eval_tokens=len(generated),
            prompt_eval_s=first - started,
            eval_s=end - first,
            context=(*tokens, *generated),
        )
    )
