"""The seam between the HTTP layer and whatever produces the words.

The HTTP layer (routing, validation, errors, slots, keep-alive, timings, NDJSON) is the
same whether a reply is scripted or computed by llama.cpp; an :class:`Engine` only loads a
model, turns a request into a stream of pieces, and embeds text. The server picks the
engine per model from :attr:`ModelCard.engine`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

# One tool call for both sides: what the engine emits is what the client reads back.
from ..domain.messages import ToolCall as ToolCall
from .catalogue import ModelCard

JsonValue = object
"""A decoded JSON value (kept loose: engines read what they need)."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """An image that reached the server, already base64-decoded and sniffed by Pillow."""

    format: str
    width: int
    height: int
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class EngineMessage:
    """One message as an engine receives it: images decoded and sniffed, roles as sent.

    Not the client's ``domain.ChatMessage``: that one carries base64 images on their way
    out and refuses unknown roles; this one is what arrived, already checked by the HTTP
    layer.
    """

    role: str
    content: str
    images: tuple[ImageInfo, ...] = ()
    tool_name: str = ""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What an engine needs to answer ``/api/chat`` or ``/api/generate``.

    ``think`` is ``False`` or the requested level (``True``, ``"low"``, ``"medium"``,
    ``"high"``) after the HTTP layer applied the model's default; ``format`` is ``None``,
    ``"json"`` or a JSON schema; ``options`` are validated Ollama options.
    """

    kind: Literal["chat", "generate"]
    messages: tuple[EngineMessage, ...]
    options: Mapping[str, JsonValue]
    format: JsonValue = None
    think: bool | str = False
    tools: tuple[Mapping[str, JsonValue], ...] = ()
    raw: bool = False
    truncate: bool = True
    """Ollama's ``truncate``: shorten a prompt longer than the context (else answer 400)."""
    context: tuple[int, ...] = ()
    """``/api/generate``'s ``context`` from an earlier answer: token ids that come first."""

    @property
    def images(self) -> tuple[ImageInfo, ...]:
        """Every image in the request, in order."""
        return tuple(image for message in self.messages for image in message.images)


@dataclass(frozen=True, slots=True)
class Piece:
    """One streamed token: visible text, thinking text, or tool calls."""

    content: str = ""
    thinking: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class Finish:
    """The last item of a generation: why it stopped and how long the prompt was.

    An engine that measures itself (a real model) also reports its token count and its
    prompt-eval and eval seconds; the HTTP layer uses them instead of its own clock.
    """

    done_reason: Literal["stop", "length"]
    prompt_tokens: int
    eval_tokens: int | None = None
    prompt_eval_s: float | None = None
    eval_s: float | None = None
    context: tuple[int, ...] | None = None
    """The prompt's and answer's token ids (``/api/generate``'s ``context``), if known."""


@dataclass(frozen=True, slots=True)
class Embedding:
    """A raw (not yet normalised) vector and the number of tokens it consumed."""

    vector: Sequence[float]
    tokens: int


class Engine(Protocol):
    """Runs models. Timing, pacing to real time and stop conditions belong to the engine.

    Two implement it: the llama.cpp engine (``ollama_nb.embedded``) for users and the
    scripted engine (``ollama_nb.testing.standin``) for tests.
    """

    async def load(self, card: ModelCard, options: Mapping[str, JsonValue]) -> float:
        """Make ``card`` ready to generate; return the seconds it took (``load_duration``)."""
        ...

    async def unload(self, card: ModelCard) -> None:
        """Free what :meth:`load` took."""
        ...

    def memory_bytes(self, card: ModelCard) -> int | None:
        """What the loaded model occupies (``/api/ps`` ``size``); ``None``: its file size."""
        ...

    def vram_bytes(self, card: ModelCard) -> int:
        """How much of it sits in GPU memory (``/api/ps`` ``size_vram``)."""
        ...

    def generate(
        self, card: ModelCard, request: GenerationRequest
    ) -> AsyncGenerator[Piece | Finish, None]:
        """Yield pieces, thinking first, then exactly one :class:`Finish`."""
        ...

    async def embed(self, card: ModelCard, texts: Sequence[str]) -> list[Embedding]:
        """One embedding per text, in order."""
        ...
