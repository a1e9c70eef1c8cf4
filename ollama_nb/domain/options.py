"""Request knobs with Ollama's names and types, checked before anything is sent.

Ollama silently ignores option keys it does not know, so a typo such as
``temprature`` costs a user an afternoon. We reject unknown keys and wrong types
where the options are built, with the closest valid name in the message.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeAlias

from .durations import DurationError, parse_go_duration
from .errors import InvalidInputError

# Ollama's `Options` and `Runner` fields (api/types.go). num_gpu counts layers
# offloaded to the GPU, not GPUs.
_INT_KEYS = (
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "num_keep",
    "seed",
    "num_predict",
    "top_k",
    "repeat_last_n",
)
_FLOAT_KEYS = (
    "temperature",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
)
_BOOL_KEYS = ("use_mmap",)
_LIST_KEYS = ("stop",)


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    """Ollama's ``options`` object; ``None`` means "server default"."""

    num_ctx: int | None = None
    num_batch: int | None = None
    num_gpu: int | None = None
    main_gpu: int | None = None
    num_thread: int | None = None
    use_mmap: bool | None = None
    num_keep: int | None = None
    seed: int | None = None
    num_predict: int | None = None
    top_k: int | None = None
    repeat_last_n: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    min_p: float | None = None
    typical_p: float | None = None
    repeat_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stop: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for key in _INT_KEYS:
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise _wrong_type(key, value, "a whole number")
        for key in _FLOAT_KEYS:
            value = getattr(self, key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _wrong_type(key, value, "a number")
            if not math.isfinite(value):
                raise _wrong_type(key, value, "a finite number")
            object.__setattr__(self, key, float(value))
        if self.use_mmap is not None and not isinstance(self.use_mmap, bool):
            raise _wrong_type("use_mmap", self.use_mmap, "true or false")
        if self.stop is not None:
            stop = (self.stop,) if isinstance(self.stop, str) else self.stop
            if not isinstance(stop, list | tuple) or not all(isinstance(s, str) for s in stop):
                raise _wrong_type("stop", self.stop, "a string or a list of strings")
            object.__setattr__(self, "stop", tuple(stop))
        _check_ranges(self)

    @classmethod
    def known_keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> GenerationOptions:
        """Build from a user's dict, refusing keys Ollama would silently drop."""
        if not values:
            # Frozen, so one shared instance serves every request that sets nothing:
            # validating twenty empty fields per call was most of building a request.
            return NO_OPTIONS if cls is GenerationOptions else cls()
        known = cls.known_keys()
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = (
                    f"Did you mean {close[0]!r}?" if close else f"Valid keys: {', '.join(known)}."
                )
                raise InvalidInputError(f"Unknown Ollama option {key!r}.", hint=hint)
        return cls(**dict(values))

    def merged(self, override: GenerationOptions) -> GenerationOptions:
        """These options with every value set in ``override`` taking precedence."""
        if override is NO_OPTIONS or not override.to_wire():  # the common call: nothing given
            return self
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(
            {
                f.name: getattr(override, f.name)
                for f in fields(override)
                if getattr(override, f.name) is not None
            }
        )
        return GenerationOptions(**values)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        for name in _OPTION_NAMES:  # sent with every request: avoid dataclasses.fields()
            value = getattr(self, name)
            if value is not None:
                wire[name] = list(value) if isinstance(value, tuple) else value
        return wire


_OPTION_NAMES = GenerationOptions.known_keys()


def _wrong_type(key: str, value: object, expected: str) -> InvalidInputError:
    return InvalidInputError(
        f"Option {key!r} must be {expected}, got {value!r} ({type(value).__name__})."
    )


def _check_ranges(options: GenerationOptions) -> None:
    positive = ("num_ctx", "num_batch", "num_thread")
    for key in positive:
        value = getattr(options, key)
        if value is not None and value <= 0:
            raise InvalidInputError(f"Option {key!r} must be positive, got {value}.")
    if options.num_predict is not None and options.num_predict < -2:
        raise InvalidInputError(
            f"Option 'num_predict' must be -1 (no limit), -2 (fill context) or >= 0, "
            f"got {options.num_predict}."
        )
    if options.temperature is not None and options.temperature < 0:
        raise InvalidInputError(f"Option 'temperature' must be >= 0, got {options.temperature}.")
    for key in ("top_p", "min_p", "typical_p"):
        value = getattr(options, key)
        if value is not None and not 0.0 <= value <= 1.0:
            raise InvalidInputError(f"Option {key!r} must be between 0 and 1, got {value}.")


# --- keep_alive -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """How long the server keeps a model loaded after a request.

    Ollama accepts a number of seconds or a Go duration string ("5m", "1h30m");
    any negative value keeps the model loaded forever and 0 unloads it at once.
    """

    value: int | float | str

    def __post_init__(self) -> None:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidInputError(
                f"keep_alive must be seconds or a duration like '5m', got {value!r}."
            )
        if isinstance(value, str):
            text = value.strip()
            try:
                object.__setattr__(self, "value", float(text) if "." in text else int(text))
            except ValueError:
                try:
                    parse_go_duration(text)
                except DurationError:
                    raise InvalidInputError(
                        f"keep_alive {value!r} is not a duration.",
                        hint="Use seconds (300), a Go duration ('5m', '1h30m') or -1 for forever.",
                    ) from None
                object.__setattr__(self, "value", text)

    @property
    def seconds(self) -> float:
        """Duration in seconds; negative means forever."""
        if isinstance(self.value, int | float):
            return float(self.value)
        return parse_go_duration(self.value)

    @property
    def forever(self) -> bool:
        return self.seconds < 0

    def to_wire(self) -> int | float | str:
        return self.value


# --- format and think -----------------------------------------------------------

ThinkLevel: TypeAlias = Literal["low", "medium", "high"]
Think: TypeAlias = bool | ThinkLevel
_THINK_LEVELS = ("low", "medium", "high")


def validate_think(value: object) -> Think | None:
    """Ollama takes ``think`` as a bool, or as a level for models that support levels."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _THINK_LEVELS:
        return value  # type: ignore[return-value]
    raise InvalidInputError(f"think must be true, false, 'low', 'medium' or 'high', got {value!r}.")


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """``"json"`` for any JSON, or a JSON schema the reply must follow."""

    schema: Literal["json"] | Mapping[str, Any]

    def __post_init__(self) -> None:
        if self.schema == "json":
            return
        if not isinstance(self.schema, Mapping):
            raise InvalidInputError(
                f"format must be 'json' or a JSON schema (dict), got {self.schema!r}."
            )
        try:
            json.dumps(self.schema)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"The JSON schema is not serialisable: {exc}.") from exc
        if not any(
            k in self.schema for k in ("type", "properties", "$ref", "anyOf", "oneOf", "enum")
        ):
            raise InvalidInputError(
                "The format schema has no 'type', 'properties' or '$ref': it does not look "
                "like a JSON schema."
            )

    @property
    def is_schema(self) -> bool:
        return self.schema != "json"

    def to_wire(self) -> str | dict[str, Any]:
        return "json" if self.schema == "json" else dict(self.schema)


#: The options of a request that sets none (what ``from_mapping`` gives for ``{}``).
NO_OPTIONS = GenerationOptions()
