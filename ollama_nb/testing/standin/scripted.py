"""A deterministic engine whose replies show what reached the server.

A chat reply quotes the last user message and lists the images that arrived; a generate
reply quotes the prompt and the system prompt. Tests (ours and users') can therefore assert
on content without a real model, and the same request always gives the same answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from collections.abc import AsyncGenerator, Mapping, Sequence

from ...serving.catalogue import ModelCard
from ...serving.engine import (
    Embedding,
    EngineMessage,
    Finish,
    GenerationRequest,
    JsonValue,
    Piece,
    ToolCall,
)
from .schema_instance import instance_for

_TOKEN = re.compile(r"\s*\S+|\s+")
#: ``<<call NAME {json args}>>`` in a user message scripts an exact tool call, one per
#: round in order, whether or not NAME was offered (real models invent calls too);
#: ``<<calls N NAME {json args}>>`` makes that round ask for the call N times at once.
_CALL_DIRECTIVE = re.compile(r"<<call(?:s\s+(\d+))?\s+([\w.-]+)\s*(\{.*?\})?\s*>>", re.DOTALL)
#: ``<<reply>>TEXT<</reply>>`` in the last user message scripts the exact reply TEXT
#: (hostile markup included): how tests make the model say something precise.
_REPLY_DIRECTIVE = re.compile(r"<<reply>>(.*?)<</reply>>", re.DOTALL)
#: Most calls one ``<<calls N ...>>`` round may ask for.
MAX_SCRIPTED_CALLS = 100_000


def split_tokens(text: str) -> list[str]:
    """Word-level tokens whose concatenation is exactly ``text``."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer's count."""
    return len(text.split())


def _last(messages: Sequence[EngineMessage], role: str) -> EngineMessage | None:
    return next((m for m in reversed(messages) if m.role == role), None)


def _word_id(word: str) -> int:
    """A stable stand-in token id per word (the scripted engine has no vocabulary)."""
    return int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big") % 128_000


class _Pacer:
    """Token *k* of a generation is due ``k`` intervals after its first, on the loop's clock.

    Pacing against absolute deadlines rather than sleeping one interval after each token
    keeps a busy server at its rate: every sleep overshoots by however long the loop was
    busy elsewhere, and with relative sleeps those overshoots add up per token, so a
    stand-in running 8 or 16 slots at once served each of them slower than one slot
    alone (the client then measured the stand-in, not itself). Tokens that fell due while
    the loop was busy go out back to back, in the same loop step, so the socket writes
    them together. A real server's slots behave the same way: each decodes at its own
    rate whatever the HTTP layer is doing.
    """

    __slots__ = ("_delay", "_loop", "_sent", "_start")

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self._sent = 0

    async def next(self) -> None:
        """Return when the next token is due (the first is due at once)."""
        self._sent += 1
        if self._delay <= 0:
            await asyncio.sleep(0)  # still yields, so a fast stream never starves others
            return
        wait = self._start + self._sent * self._delay - self._loop.time()
        if wait > 0:
            await asyncio.sleep(wait)


class ScriptedEngine:
    """Scripted replies at ``tokens_per_second``; a cold load takes ``load_seconds``."""

    IMAGE_TOKENS = 256
    """Prompt tokens charged per image, roughly what gemma3's projector produces."""

    def __init__(self, *, tokens_per_second: float = 0.0, load_seconds: float = 0.0) -> None:
        self._delay = 1.0 / tokens_per_second if tokens_per_second > 0 else 0.0
        self._load_seconds = load_seconds

    async def load(self, card: ModelCard, options: Mapping[str, JsonValue]) -> float:
        """Pretend to read weights for ``load_seconds``."""
        if self._load_seconds > 0:
            await asyncio.sleep(self._load_seconds)
        return self._load_seconds

    async def unload(self, card: ModelCard) -> None:
        """Nothing to free."""

    def memory_bytes(self, card: ModelCard) -> int | None:
        """A scripted model "occupies" its download size."""
        return None

    def vram_bytes(self, card: ModelCard) -> int:
        """All of it, as on a machine whose GPU holds the whole model."""
        return card.size_bytes

    async def embed(self, card: ModelCard, texts: Sequence[str]) -> list[Embedding]:
        """A vector seeded by the text's hash: same text, same vector, any process."""
        out: list[Embedding] = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
            rng = random.Random(seed)
            vector = [rng.gauss(0.0, 1.0) for _ in range(card.embedding_length)]
            out.append(Embedding(vector=vector, tokens=max(1, count_tokens(text))))
        return out

    async def generate(
        self, card: ModelCard, request: GenerationRequest
    ) -> AsyncGenerator[Piece | Finish, None]:
        """Stream thinking, then content or a tool call, then a :class:`Finish`."""
        prompt_tokens = sum(count_tokens(m.content) for m in request.messages)
        prompt_tokens += self.IMAGE_TOKENS * len(request.images)
        options = request.options
        limit = options.get("num_predict")
        budget = int(limit) if isinstance(limit, int | float) and limit > 0 else None
        emitted = 0
        pace = _Pacer(self._delay)

        if request.think:
            for token in split_tokens(self._thinking(request)):
                if budget is not None and emitted >= budget:
                    yield Finish("length", prompt_tokens)
                    return
                emitted += 1
                yield Piece(thinking=token)
                await pace.next()

        calls = self._tool_calls(request)
        if calls:
            yield Piece(tool_calls=calls)
            await pace.next()
            yield Finish("stop", prompt_tokens)
            return

        text = self._reply(request)
        reason: str = "stop"
        stops = options.get("stop")
        if isinstance(stops, list):
            cut = min((i for s in stops if s and (i := text.find(str(s))) >= 0), default=-1)
            if cut >= 0:
                text = text[:cut]
        for token in split_tokens(text):
            if budget is not None and emitted >= budget:
                reason = "length"
                break
            emitted += 1
            yield Piece(content=token)
            await pace.next()
        said = " ".join(m.content for m in request.messages) + " " + text
        context = (*request.context, *(_word_id(w) for w in said.split()))
        yield Finish("length" if reason == "length" else "stop", prompt_tokens, context=context)

    @staticmethod
    def _quote(request: GenerationRequest) -> str:
        last = request.messages[-1] if request.messages else None
        if last is not None and last.role == "tool":
            return last.content
        user = _last(request.messages, "user")
        return user.content if user else ""

    def _reply(self, request: GenerationRequest) -> str:
        last = request.messages[-1] if request.messages else None
        scripted = _REPLY_DIRECTIVE.search(last.content) if last and last.role == "user" else None
        if scripted is not None:
            return scripted.group(1)
        if last is not None and last.role == "tool":
            who = f" {last.tool_name}" if last.tool_name else ""
            text = f'Tool{who} returned: "{last.content}".'
        else:
            text = f'You said: "{self._quote(request)}".'
        system = _last(request.messages, "system")
        if system is not None and system.content:
            text += f' System said: "{system.content}".'
        if request.images:
            listed = " ".join(
                f"{i}) {img.format} {img.width}x{img.height}"
                for i, img in enumerate(request.images, start=1)
            )
            text += f" Images received: {listed}."
        if request.format == "json":
            return json.dumps({"response": text})
        if isinstance(request.format, Mapping):
            return json.dumps(instance_for(request.format, self._quote(request)))
        return text

    def _thinking(self, request: GenerationRequest) -> str:
        level = request.think if isinstance(request.think, str) else "default"
        return (
            f'The user wrote "{self._quote(request)}". '
            f"I will quote it back (thinking effort: {level})."
        )

    def _tool_calls(self, request: GenerationRequest) -> tuple[ToolCall, ...]:
        """Call a tool the last user message names; never loop after a tool result.

        With ``<<call ...>>`` directives in the last user message, round *k* (counted by
        the tool results sent back since that message) makes the *k*-th scripted call.
        """
        if not request.tools or not request.messages:
            return ()
        scripted = self._scripted_calls(request.messages)
        if scripted or request.messages[-1].role != "user":
            return scripted
        text = request.messages[-1].content.lower()
        for tool in request.tools:
            function = tool.get("function")
            if not isinstance(function, Mapping):
                continue
            name = function.get("name")
            if isinstance(name, str) and name and name.lower() in text:
                params = function.get("parameters")
                schema = params if isinstance(params, Mapping) else {"type": "object"}
                args = instance_for(schema, request.messages[-1].content)
                return (ToolCall(name=name, arguments=args if isinstance(args, dict) else {}),)
        return ()

    @staticmethod
    def _scripted_calls(messages: Sequence[EngineMessage]) -> tuple[ToolCall, ...]:
        last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
        if last_user is None:
            return ()
        directives = _CALL_DIRECTIVE.findall(messages[last_user].content)
        # Rounds so far: runs of tool results since that message (one run per round,
        # however many calls the round made).
        after = messages[last_user:]
        rounds = sum(
            1
            for i in range(1, len(after))
            if after[i].role == "tool" and after[i - 1].role != "tool"
        )
        if not directives or rounds >= len(directives):
            return ()
        count, name, raw = directives[rounds]
        try:
            args = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            args = {}
        call = ToolCall(name=name, arguments=args if isinstance(args, dict) else {})
        return (call,) * min(int(count or 1), MAX_SCRIPTED_CALLS)
