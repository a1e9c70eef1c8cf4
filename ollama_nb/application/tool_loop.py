"""A chat in which the model may call the user's functions before it answers.

Ollama's tool calling is a conversation: the request carries ``tools``; a
reply may carry ``message.tool_calls`` instead of (or beside) text; the client
runs them and sends each result back as a ``tool`` message naming the tool,
with the model's own call message before them; the model then answers or asks
again. This loop does that, at most ``max_rounds`` times, so a model that
keeps calling cannot run the user's functions forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from ..domain import ChatChunk, ChatMessage, ChatRequest, ChatResult, InvalidInputError
from .replies import ReplyAccumulator
from .tools import ToolOutcome, ToolSet
from .use_cases import Ports, stream_reply

DEFAULT_MAX_ROUNDS = 5


@dataclass(slots=True)
class ToolLoop:
    """One chat's tools and what happened so far; a surface reads it on interrupt."""

    tools: ToolSet
    max_rounds: int = DEFAULT_MAX_ROUNDS
    rounds: int = 0
    outcomes: list[ToolOutcome] = field(default_factory=list)
    accumulator: ReplyAccumulator | None = None
    exchange: list[ChatMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.max_rounds, bool) or not isinstance(self.max_rounds, int):
            raise InvalidInputError(f"max_rounds must be a whole number, got {self.max_rounds!r}.")
        if self.max_rounds < 1:
            raise InvalidInputError(f"max_rounds must be at least 1, got {self.max_rounds}.")

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
            names = ", ".join(call.name for call in result.tool_calls)
            yield replace(
                result,
                exchange=tuple(loop.exchange),
                error=f"The model still asked for {names} after {loop.max_rounds} tool "
                "round(s); not run. Raise max_rounds (--max-rounds) to let it continue.",
            )
            return
        loop.rounds += 1
        sent_back = [ChatMessage("assistant", result.text, tool_calls=result.tool_calls)]
        for call in result.tool_calls:
            # The user's function runs off the event loop: a slow one must not
            # stall other requests (a widget, a batch) sharing it.
            outcome = await asyncio.to_thread(loop.tools.invoke, call)
            loop.outcomes.append(outcome)
            yield outcome
            sent_back.append(ChatMessage("tool", outcome.content, tool_name=outcome.name))
        loop.exchange.extend(sent_back)
        current = replace(current, messages=(*current.messages, *sent_back))
