"""From what a user asked for to the request Ollama gets: one builder for every surface.

The magics, the chat panel, the Python API and batches all take the same
arguments (model, prompt or messages, system, images, options, format or
schema, think, keep_alive). ``RequestBuilder.from_user`` checks them and fills
the gaps from the settings once; a batch does it before its first row, so a
typo costs a second, not a table. ``chat``/``generate`` then make one domain
request per prompt. Images arrive here already as base64: preparing them is the
image pipeline's job, and each surface shows or caches them its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypedDict

from pydantic import BaseModel

from .application.reply_schema import ReplySchema
from .domain import (
    ChatMessage,
    ChatRequest,
    GenerateRequest,
    GenerationOptions,
    InvalidInputError,
    KeepAlive,
    ModelName,
    ResponseFormat,
    Think,
    validate_think,
)
from .settings import Settings

#: A prompt, or a whole conversation as messages (domain objects or dicts).
Messages = str | Sequence[ChatMessage | Mapping[str, Any]]
#: Options as a dict of Ollama option names, or already checked.
UserOptions = Mapping[str, Any] | GenerationOptions | None


#: ``"json"`` for any JSON, a JSON schema, or a pydantic model class the reply is read into.
ReplyFormat: TypeAlias = (
    Literal["json"] | Mapping[str, Any] | type[BaseModel] | ReplySchema | ResponseFormat | None
)


class RequestArguments(TypedDict, total=False):
    """The keywords every surface hands to ``RequestBuilder.from_user``, typed for editors.

    ``model`` (else the default model), ``system`` prompt, Ollama ``options``
    (``{"temperature": 0, "num_ctx": 8192}``), ``format``, ``think`` (a bool or
    ``"low"``/``"medium"``/``"high"``) and ``keep_alive`` (seconds or ``"5m"``).
    """

    model: str | None
    system: str | None
    options: UserOptions
    format: ReplyFormat
    think: Think | None
    keep_alive: str | float | None


Discover = Callable[[str], ModelName]
"""Asks the server which model to use for a capability ("completion" or "embedding")
when none is named or set (``use_cases.choose_model``, run by the runtime)."""


def resolve_model(
    model: str | None,
    settings: Settings,
    discover: Discover | None = None,
    capability: str = "completion",
) -> ModelName:
    """The model to use: the one named, else the configured default, else ``discover``'s."""
    name = model or settings.default_model
    if not name and discover is not None:
        return discover(capability)
    if not name:
        raise InvalidInputError(
            "No model given and no default model set.",
            hint="Pass model='llama3.2', run `%ollama use llama3.2`, or set OLLAMA_NB_DEFAULT_MODEL.",
        )
    return ModelName(name)


@dataclass(frozen=True, slots=True)
class RequestBuilder:
    """Everything a request carries but its prompt and images, checked and resolved."""

    model: ModelName
    options: GenerationOptions = field(default_factory=GenerationOptions)
    system: str | None = None
    schema: ReplySchema | None = None
    think: Think | None = None
    keep_alive: KeepAlive | None = None

    @classmethod
    def from_user(
        cls,
        settings: Settings,
        *,
        model: str | None = None,
        system: str | None = None,
        options: UserOptions = None,
        format: object = None,
        think: Think | None = None,
        keep_alive: str | float | None = None,
        discover: Discover | None = None,
    ) -> RequestBuilder:
        """Check the user's arguments; unset model, options and keep_alive come from ``settings``.

        ``format`` is ``"json"``, a JSON schema dict or a pydantic model class
        (``ReplySchema`` reads the reply back the same way).
        """
        given = (
            options
            if isinstance(options, GenerationOptions)
            else GenerationOptions.from_mapping(options)
        )
        keep = keep_alive if keep_alive is not None else settings.keep_alive
        return cls(
            model=resolve_model(model, settings, discover),
            options=settings.generation_options.merged(given),
            system=system,
            schema=None if format is None else ReplySchema.from_user(format, label="format"),
            think=validate_think(think),
            keep_alive=None if keep is None else KeepAlive(keep),
        )

    @property
    def format(self) -> ResponseFormat | None:
        return None if self.schema is None else self.schema.format

    def chat(self, prompt: Messages, images: Sequence[str] = ()) -> ChatRequest:
        """``/api/chat`` for a prompt (with ``images``) or a list of messages."""
        if isinstance(prompt, str):
            messages = [ChatMessage("user", prompt, images=tuple(images))]
        else:
            if images:
                raise InvalidInputError(
                    "Pass images inside the messages when giving a message list."
                )
            messages = [m if isinstance(m, ChatMessage) else ChatMessage(**dict(m)) for m in prompt]
        if self.system is not None:
            messages.insert(0, ChatMessage("system", self.system))
        return ChatRequest(
            model=self.model,
            messages=tuple(messages),
            options=self.options,
            format=self.format,
            think=self.think,
            keep_alive=self.keep_alive,
        )

    def generate(self, prompt: str, images: Sequence[str] = ()) -> GenerateRequest:
        """``/api/generate`` for one prompt; the system prompt travels in its own field."""
        return GenerateRequest(
            model=self.model,
            prompt=prompt,
            system=self.system,
            images=tuple(images),
            options=self.options,
            format=self.format,
            think=self.think,
            keep_alive=self.keep_alive,
        )
