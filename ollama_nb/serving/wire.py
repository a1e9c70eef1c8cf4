"""Reading requests and writing responses in Ollama's wire format.

Validation happens here, once, with Ollama's error wording where it has one, so handlers
work on checked values. Everything returned to a client is built by these helpers:
RFC 3339 times, nanosecond durations, ``{"error": ...}`` bodies.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime

from .catalogue import EMBEDDING, INSERT, THINKING, TOOLS, VISION, ModelCard
from .durations import DurationError, keep_alive_from_request
from .schemas import SchemaError, check_schema

JsonObject = dict[str, object]

_INT_OPTIONS = frozenset(
    {
        "num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "num_keep", "seed",
        "num_predict", "top_k", "repeat_last_n", "mirostat",
    }
)  # fmt: skip
_FLOAT_OPTIONS = frozenset(
    {
        "top_p", "min_p", "tfs_z", "typical_p", "temperature", "repeat_penalty",
        "presence_penalty", "frequency_penalty", "mirostat_tau", "mirostat_eta",
    }
)  # fmt: skip
_BOOL_OPTIONS = frozenset(
    {
        "numa", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mmap", "use_mlock",
        "embedding_only", "penalize_newline",
    }
)  # fmt: skip
_THINK_LEVELS = ("low", "medium", "high")
_CAPABILITY_ORDER = ("completion", TOOLS, INSERT, VISION, EMBEDDING, THINKING)


class ApiError(Exception):
    """An error response: ``status`` and the ``error`` message Ollama would send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def now_rfc3339() -> str:
    """The current UTC time as Ollama prints ``created_at``."""
    return rfc3339(datetime.now(UTC))


def rfc3339(moment: datetime) -> str:
    """RFC 3339 with microseconds and ``Z`` (parsed by Go, pydantic and ``fromisoformat``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ns(seconds: float) -> int:
    """Seconds to whole nanoseconds; never zero, because clients divide by durations."""
    return max(1, round(seconds * 1e9))


def parse_body(raw: bytes) -> JsonObject:
    """Decode a JSON object body or raise Ollama's 400."""
    if not raw.strip():
        raise ApiError(400, "missing request body")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from exc
    if not isinstance(value, dict):
        raise ApiError(400, "json: cannot unmarshal request body: expected a JSON object")
    return value


def model_field(body: Mapping[str, object], *, legacy_name: bool = False) -> str:
    """The requested model name (``name`` accepted where Ollama still accepts it)."""
    value = body.get("model")
    if not value and legacy_name:
        value = body.get("name")
    if value is not None and not isinstance(value, str):
        raise ApiError(400, "json: cannot unmarshal model: expected a string")
    if not value or not value.strip():
        raise ApiError(400, "model is required")
    return value


def not_found(model: str) -> ApiError:
    """The 404 a client sees for a model that is not installed (current Ollama's words)."""
    return ApiError(404, f"model '{model}' not found")


def string_field(body: Mapping[str, object], key: str) -> str:
    """An optional string field ("" when absent)."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"json: cannot unmarshal {key}: expected a string")
    return value


def bool_field(body: Mapping[str, object], key: str, default: bool) -> bool:
    """An optional boolean field such as ``stream`` or ``raw``."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(400, f"json: cannot unmarshal {key}: expected true or false")
    return value


def options_field(body: Mapping[str, object]) -> dict[str, object]:
    """Validate ``options`` like ``api.Options.FromMap``.

    Unknown keys are ignored and so are ``null`` values (LangChain sends every option it
    knows, unset ones as ``null``), leaving the model's default in place.
    """
    value = body.get("options")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, "json: cannot unmarshal options: expected an object")
    value = {key: item for key, item in value.items() if item is not None}
    for key, item in value.items():
        if key in _INT_OPTIONS or key in _FLOAT_OPTIONS:
            if isinstance(item, bool) or not isinstance(item, int | float):
                kind = "integer" if key in _INT_OPTIONS else "float32"
                raise ApiError(400, f'option "{key}" must be of type {kind}')
            if isinstance(item, float) and not math.isfinite(item):
                raise ApiError(400, f'option "{key}" must be a finite number')
        elif key in _BOOL_OPTIONS:
            if not isinstance(item, bool):
                raise ApiError(400, f'option "{key}" must be of type boolean')
        elif key == "stop" and (
            not isinstance(item, list) or not all(isinstance(s, str) for s in item)
        ):
            raise ApiError(400, 'option "stop" must be of an array of strings')
    return dict(value)


def format_field(body: Mapping[str, object]) -> object:
    """``None``, ``"json"`` or a JSON-schema object."""
    value = body.get("format")
    if value in (None, ""):
        return None
    if value == "json":
        return value
    if isinstance(value, dict):
        try:
            check_schema(value)
        except SchemaError as exc:
            raise ApiError(400, str(exc)) from exc
        return value
    raise ApiError(400, f'invalid format: {json.dumps(value)}; expected "json" or a JSON schema')


def think_field(body: Mapping[str, object]) -> bool | str | None:
    """``think`` as Ollama's ``ThinkValue`` accepts it."""
    value = body.get("think")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _THINK_LEVELS:
        return value.lower()
    raise ApiError(
        400,
        f"invalid think value: {json.dumps(value)} "
        '(must be "high", "medium", "low", true, or false)',
    )


def keep_alive_field(body: Mapping[str, object], default: float) -> float:
    """The request's keep-alive in seconds, falling back to the server's setting."""
    value = body.get("keep_alive")
    if value is None:
        return default
    try:
        return keep_alive_from_request(value)
    except DurationError as exc:
        raise ApiError(400, str(exc)) from exc


def tools_field(body: Mapping[str, object]) -> tuple[Mapping[str, object], ...]:
    """``tools`` as a tuple of objects."""
    value = body.get("tools")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ApiError(400, "json: cannot unmarshal tools: expected an array of objects")
    return tuple(value)


def context_field(body: Mapping[str, object]) -> tuple[int, ...]:
    """``/api/generate``'s ``context``: token ids returned by an earlier answer."""
    value = body.get("context")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value
    ):
        raise ApiError(400, "json: cannot unmarshal context: expected an array of token ids")
    return tuple(value)


def capability_list(card: ModelCard) -> list[str]:
    """Capabilities in the order Ollama lists them."""
    return [c for c in _CAPABILITY_ORDER if c in card.capabilities]


def error_body(message: str) -> bytes:
    """``{"error": message}`` as bytes."""
    return json.dumps({"error": message}).encode()


def line(obj: Mapping[str, object]) -> bytes:
    """One NDJSON line."""
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"
