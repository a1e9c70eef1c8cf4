"""A chat in which the model may call the user's functions before it answers.

Ollama's tool calling is a conversation: the request carries ``tools``; a
reply may carry ``message.tool_calls`` instead of (or beside) text; the client
runs them and sends each result back as a ``tool`` message naming the tool,
with the model's own call message before them; the model then answers or asks
again. This loop does that, at most ``max_rounds`` times, so a model that
keeps calling cannot run the user's functions forever; each round runs at most
``max_calls`` calls (a reply asking for 5,000 runs the first few and says so in
one line), and a call's arguments are capped in size before they are parsed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from ..domain import ChatChunk, ChatMessage, ChatRequest, ChatResult, InvalidInputError
from .replies import ReplyAccumulator
from .tools import DEFAULT_MAX_ARGUMENT_CHARS, ToolOutcome, ToolSet
from .use_cases import Ports, stream_reply

DEFAULT_MAX_ROUNDS = 5
#: Calls run per round: enough for a model that gathers a few facts at once.
DEFAULT_MAX_CALLS = 8


@dataclass(slots=True)
class ToolLoop:
    """One chat's tools and what happened so far; a surface reads it on interrupt."""

    tools: ToolSet
    max_rounds: int = DEFAULT_MAX_ROUNDS
    max_calls: int = DEFAULT_MAX_CALLS
    max_argument_chars: int = DEFAULT_MAX_ARGUMENT_CHARS
    rounds: int = 0
    outcomes: list[ToolOutcome] = field(default_factory=list)
    accumulator: ReplyAccumulator | None = None
    exchange: list[ChatMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("max_rounds", "max_calls", "max_argument_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInputError(f"{name} must be a whole number, got {value!r}.")
            if value < 1:
                raise InvalidInputError(f"{name} must be at least 1, got {value}.")

    def partial(self) -> ChatResult | None:
        """What arrived in the round that was running when the user stopped."""
        if self.accumulator is None:
            return None
        return replace(self.accumulator.result(interrupted=True), exchange=tuple(self.exchange))


async def chat_with_tools(
    ports: Ports,
    request: ChatRequest,
    loop: ToolLoop,
    *,
    stream: bool = True,
    image_bytes_saved: int = 0,
) -> AsyncGenerator[ChatChunk | ToolOutcome | ChatResult, None]:
    """Yield the answer's pieces, each tool outcome as it happens, then the final result.

    The final ``ChatResult`` carries the tool rounds in ``exchange``. When the
    model still asks for tools after ``max_rounds`` rounds, its calls are not
    run and the result's ``error`` says so.
    """
    # ``stream_reply`` refuses a model without "tools" before the first round is sent.
    current = replace(request, tools=loop.tools.to_wire())
    saved = image_bytes_saved
    while True:
        loop.accumulator = ReplyAccumulator(model=request.model.value)
        result: ChatResult | None = None
        replies = stream_reply(
            ports, current, stream=stream, accumulator=loop.accumulator, image_bytes_saved=saved
        )
        saved = 0  # images are counted once, with the first round
        async with aclosing(replies) as items:
            async for item in items:
                if isinstance(item, ChatResult):
                    result = item
                else:
                    yield item
        assert result is not None, "stream_reply always ends with a result"
        if not result.tool_calls:
            yield replace(result, exchange=tuple(loop.exchange))
            return
        if loop.rounds >= loop.max_rounds:
            names = ", ".join(sorted({call.name[:64] for call in result.tool_calls})[:5])
            yield replace(
                result,
                exchange=tuple(loop.exchange),
                error=f"The model still asked for {names} after {loop.max_rounds} tool "
                "round(s); not run. Raise max_rounds (--max-rounds) to let it continue.",
            )
            return
        loop.rounds += 1
        calls = result.tool_calls[: loop.max_calls]
        sent_back = [ChatMessage("assistant", result.text, tool_calls=calls)]
        for call in calls:
            # The user's function runs off the event loop: a slow one must not
            # stall other requests (a widget, a batch) sharing it.
            outcome = await asyncio.to_thread(
                loop.tools.invoke, call, max_argument_chars=loop.max_argument_chars
            )
            loop.outcomes.append(outcome)
            yield outcome
            sent_back.append(ChatMessage("tool", outcome.content, tool_name=outcome.name))
        if len(result.tool_calls) > len(calls):
            limited = _limited(len(result.tool_calls), len(calls))
            loop.outcomes.append(limited)
            yield limited
            sent_back.append(ChatMessage("tool", limited.content, tool_name="limit"))
        loop.exchange.extend(sent_back)
        current = replace(current, messages=(*current.messages, *sent_back))


def _limited(asked: int, ran: int) -> ToolOutcome:
    """The one line (and the one tool message) for calls beyond a round's limit."""
    return ToolOutcome(
        "limit",
        {},
        "limited",
        f"The model asked for {asked:,} tool calls in one round; ran the first {ran} "
        f"and skipped {asked - ran:,} (limit {ran} per round, OLLAMA_NB_TOOL_MAX_CALLS).",
    )
