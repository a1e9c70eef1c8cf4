"""One reply, as every surface consumes it: drained here, drawn by the surface.

A reply is a stream of pieces, perhaps tool rounds, and one result; a user who
stops it keeps what arrived, and a missing model is answered with the installed
names that come close. The magic, the chat panel and the Python API used to
each write that loop (and its interrupt and error rules) themselves. Now each
builds a :class:`ReplyStream` and either iterates :meth:`ReplyStream.items` (to
draw every piece on its own thread) or awaits :meth:`ReplyStream.result` with
callbacks; what to keep on Ctrl-C or on an error is :meth:`ReplyStream.partial`
and :meth:`ReplyStream.kept`, the same for all of them.

With ``check_context`` the stream asks the server for the model's context
window first (only for a prompt long enough to matter) and yields the
:class:`ContextCheck`, so a surface warns before the answer starts without a
second trip to the loop thread.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TypeAlias

from ..domain import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    GenerateRequest,
    ModelNotFoundError,
    OllamaNbError,
)
from . import use_cases
from .context_guard import ContextCheck, check_context, needs_check
from .replies import ReplyAccumulator
from .tool_loop import ToolLoop, chat_with_tools
from .tools import ToolOutcome

#: What a reply stream yields: pieces, tool outcomes, at most one context check, one result.
ReplyItem: TypeAlias = ChatChunk | ToolOutcome | ContextCheck | ChatResult


@dataclass(slots=True)
class ReplyStream:
    """One request's reply; ``tools`` makes it a tool-calling chat (chat requests only)."""

    request: ChatRequest | GenerateRequest
    tools: ToolLoop | None = None
    stream: bool = True
    image_bytes_saved: int = 0
    #: Ask for the context window before sending (a long prompt only); see the module doc.
    check_context: bool = False
    #: ``OLLAMA_CONTEXT_LENGTH`` as the caller knows it, for the context check.
    server_context: int | None = None
    accumulator: ReplyAccumulator = field(init=False)
    check: ContextCheck | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.tools is not None and not isinstance(self.request, ChatRequest):
            raise TypeError("tools need a chat request")
        self.accumulator = ReplyAccumulator(model=self.request.model.value)

    async def items(self, ports: use_cases.Ports) -> AsyncGenerator[ReplyItem, None]:
        """Everything in order, ending with the ``ChatResult``; errors are ours, with hints."""
        try:
            if self.check_context and needs_check(self.request):
                self.check = await check_context(ports, self.request, self.server_context)
                yield self.check
            replies: AsyncGenerator[ChatChunk | ToolOutcome | ChatResult, None]
            if self.tools is not None:
                assert isinstance(self.request, ChatRequest)  # checked in __post_init__
                replies = chat_with_tools(
                    ports,
                    self.request,
                    self.tools,
                    stream=self.stream,
                    image_bytes_saved=self.image_bytes_saved,
                )
            else:
                replies = use_cases.stream_reply(
                    ports,
                    self.request,
                    stream=self.stream,
                    accumulator=self.accumulator,
                    image_bytes_saved=self.image_bytes_saved,
                )
            async with aclosing(replies) as steps:
                async for step in steps:
                    yield step
        except ModelNotFoundError as exc:
            raise await use_cases.with_suggestions(ports, exc) from None

    async def result(
        self,
        ports: use_cases.Ports,
        *,
        on_chunk: Callable[[ChatChunk], None] | None = None,
        on_tool: Callable[[ToolOutcome], None] | None = None,
    ) -> ChatResult:
        """Drain the reply on the loop, handing pieces and tool outcomes to the callbacks."""
        if self.tools is None and not self.check_context:
            # The plain case skips a generator layer: this is every ``ollama_nb.chat()``.
            try:
                return await use_cases.complete(
                    ports,
                    self.request,
                    stream=self.stream,
                    on_chunk=on_chunk,
                    accumulator=self.accumulator,
                    image_bytes_saved=self.image_bytes_saved,
                )
            except ModelNotFoundError as exc:
                raise await use_cases.with_suggestions(ports, exc) from None
        result: ChatResult | None = None
        async with aclosing(self.items(ports)) as items:
            async for item in items:
                result = _route(item, on_chunk, on_tool, None) or result
        assert result is not None, "a reply stream always ends with a result"
        return result

    def follow(
        self,
        items: Iterable[ReplyItem],
        *,
        on_chunk: Callable[[ChatChunk], None] | None = None,
        on_tool: Callable[[ToolOutcome], None] | None = None,
        on_check: Callable[[ContextCheck], None] | None = None,
    ) -> ChatResult:
        """Drain ``items`` (the stream carried to this thread), routing each to its drawer."""
        result: ChatResult | None = None
        for item in items:
            result = _route(item, on_chunk, on_tool, on_check) or result
        assert result is not None, "a reply stream always ends with a result"
        return result

    @property
    def current(self) -> ReplyAccumulator:
        """The round being streamed now (tool rounds each have their own), for drawing."""
        if self.tools is not None and self.tools.accumulator is not None:
            return self.tools.accumulator
        return self.accumulator

    def partial(self) -> ChatResult:
        """What arrived before the user stopped, marked interrupted (tool rounds included)."""
        kept = self.tools.partial() if self.tools is not None else None
        return kept or self.accumulator.result(interrupted=True)

    @staticmethod
    def kept(error: OllamaNbError) -> ChatResult | None:
        """The text that arrived before ``error`` broke the reply off, if any."""
        return error.partial if isinstance(error.partial, ChatResult) else None


def _route(
    item: ReplyItem,
    on_chunk: Callable[[ChatChunk], None] | None,
    on_tool: Callable[[ToolOutcome], None] | None,
    on_check: Callable[[ContextCheck], None] | None,
) -> ChatResult | None:
    """Hand ``item`` to its drawer; the result is returned instead."""
    if isinstance(item, ChatResult):
        return item
    if isinstance(item, ToolOutcome):
        if on_tool is not None:
            on_tool(item)
    elif isinstance(item, ContextCheck):
        if on_check is not None:
            on_check(item)
    elif on_chunk is not None:
        on_chunk(item)
    return None
