"""Chat messages and the requests built from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .errors import InvalidInputError
from .names import ModelName
from .options import GenerationOptions, KeepAlive, ResponseFormat, Think, validate_think

Role: TypeAlias = Literal["system", "user", "assistant", "tool"]
_ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for.

    A model's call is a request, not a command: ``raw_arguments`` holds arguments a
    server sent as JSON text instead of an object (parsed later, under a size cap),
    and ``malformed`` says why a call cannot run at all (no function, arguments of
    the wrong shape). The tool layer answers both to the model as errors.
    """

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    raw_arguments: str | None = None
    malformed: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"function": {"name": self.name, "arguments": dict(self.arguments)}}


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn. ``images`` are plain base64 strings, as Ollama wants them."""

    role: Role
    content: str = ""
    images: tuple[str, ...] = ()
    thinking: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_name: str | None = None

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise InvalidInputError(
                f"Message role must be one of {', '.join(_ROLES)}, got {self.role!r}."
            )
        if not isinstance(self.content, str):
            raise InvalidInputError(
                f"Message content must be text, got {type(self.content).__name__}."
            )
        object.__setattr__(self, "images", tuple(self.images))
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))
        for image in self.images:
            _check_base64_image(image)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.images:
            wire["images"] = list(self.images)
        if self.thinking:
            wire["thinking"] = self.thinking
        if self.tool_calls:
            wire["tool_calls"] = [call.to_wire() for call in self.tool_calls]
        if self.tool_name:
            wire["tool_name"] = self.tool_name
        return wire


def _check_base64_image(image: object) -> None:
    if not isinstance(image, str):
        raise InvalidInputError(
            "Images in a message must be base64 text; pass other sources through the image pipeline."
        )
    if image.startswith("data:"):
        raise InvalidInputError(
            "Ollama rejects images with a 'data:' URL prefix.",
            hint="Send only the base64 part after the comma.",
        )


def _check_prompt(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidInputError(f"The {what} must be text, got {type(text).__name__}.")
    if not text.strip():
        raise InvalidInputError(
            f"The {what} is empty.", hint="Write something for the model to answer."
        )
    return text


@dataclass(frozen=True, slots=True)
class _Common:
    model: ModelName
    options: GenerationOptions = field(default_factory=GenerationOptions)
    format: ResponseFormat | None = None
    think: Think | None = None
    keep_alive: KeepAlive | None = None

    def _common_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"model": self.model.value}
        options = self.options.to_wire()
        if options:
            wire["options"] = options
        if self.format is not None:
            wire["format"] = self.format.to_wire()
        if self.think is not None:
            wire["think"] = self.think
        if self.keep_alive is not None:
            wire["keep_alive"] = self.keep_alive.to_wire()
        return wire


@dataclass(frozen=True, slots=True)
class ChatRequest(_Common):
    """``/api/chat``: the whole conversation travels with every request."""

    messages: tuple[ChatMessage, ...] = ()
    tools: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        validate_think(self.think)
        object.__setattr__(self, "messages", tuple(self.messages))
        if not self.messages:
            raise InvalidInputError("A chat needs at least one message.")
        last = self.messages[-1]
        if last.role == "user" and not last.images:
            _check_prompt(last.content, "prompt")

    @property
    def image_count(self) -> int:
        return sum(len(m.images) for m in self.messages)

    def to_wire(self, *, stream: bool) -> dict[str, Any]:
        wire = self._common_wire()
        wire["messages"] = [m.to_wire() for m in self.messages]
        if self.tools:
            wire["tools"] = [dict(t) for t in self.tools]
        wire["stream"] = stream
        return wire


@dataclass(frozen=True, slots=True)
class GenerateRequest(_Common):
    """``/api/generate``: a single prompt, optionally with a system prompt and images."""

    prompt: str = ""
    system: str | None = None
    images: tuple[str, ...] = ()
    raw: bool = False
    allow_empty: bool = False  # an empty prompt only loads (or with keep_alive=0 unloads) the model

    def __post_init__(self) -> None:
        validate_think(self.think)
        object.__setattr__(self, "images", tuple(self.images))
        for image in self.images:
            _check_base64_image(image)
        if not self.allow_empty:
            _check_prompt(self.prompt, "prompt")

    @property
    def image_count(self) -> int:
        return len(self.images)

    def to_wire(self, *, stream: bool) -> dict[str, Any]:
        wire = self._common_wire()
        wire["prompt"] = self.prompt
        if self.system is not None:
            wire["system"] = self.system
        if self.images:
            wire["images"] = list(self.images)
        if self.raw:
            wire["raw"] = True
        wire["stream"] = stream
        return wire


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """``/api/embed``: one vector per input text."""

    model: ModelName
    inputs: tuple[str, ...]
    truncate: bool = True
    dimensions: int | None = None
    keep_alive: KeepAlive | None = None
    options: GenerationOptions = field(default_factory=GenerationOptions)

    def __post_init__(self) -> None:
        inputs = (self.inputs,) if isinstance(self.inputs, str) else tuple(self.inputs)
        if not inputs:
            raise InvalidInputError("Nothing to embed: give at least one text.")
        for text in inputs:
            if not isinstance(text, str):
                raise InvalidInputError(
                    f"Embedding inputs must be text, got {type(text).__name__}."
                )
        object.__setattr__(self, "inputs", inputs)
        if self.dimensions is not None and self.dimensions <= 0:
            raise InvalidInputError(f"dimensions must be positive, got {self.dimensions}.")

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"model": self.model.value, "input": list(self.inputs)}
        if not self.truncate:
            wire["truncate"] = False
        if self.dimensions is not None:
            wire["dimensions"] = self.dimensions
        if self.keep_alive is not None:
            wire["keep_alive"] = self.keep_alive.to_wire()
        options = self.options.to_wire()
        if options:
            wire["options"] = options
        return wire
