"""Structured replies: a user's schema becomes Ollama's ``format``, and the reply is read back.

One place for every surface: ``%%chat --schema``/``-f json``, ``ollama_nb.chat(format=...)``
and batches, which also spread the fields into typed columns (``ReplyColumns``).
A schema is a pydantic model class (replies parse into its instances), a JSON
schema dict (checked with ``jsonschema``, before anything is sent and on every
reply) or ``"json"`` (any JSON).

Ollama constrains decoding to the schema, but a reply can still fail to parse
(``num_predict`` cut it short, a model ignored part of the schema). That is a
``ReplyValidationError`` the surface shows beside the raw text: never a lost answer.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ..domain import InvalidInputError, ResponseFormat

#: pandas dtypes for JSON/Python scalar types; everything else stays ``object``.
_JSON_DTYPES = {"integer": "Int64", "number": "Float64", "boolean": "boolean", "string": "str"}
_PY_DTYPES: dict[type, str] = {int: "Int64", float: "Float64", bool: "boolean", str: "str"}

#: A column's type: a pandas dtype name, or the categories of a closed set of labels.
ColumnType = str | tuple[str, ...]


class ReplyValidationError(InvalidInputError):
    """The reply did not match the schema; the raw text is kept beside this message.

    ``value`` is the decoded JSON when the reply was JSON at all (a JSON-schema
    mismatch still lets the caller look at what came back).
    """

    def __init__(self, message: str, *, value: object = None) -> None:
        super().__init__(message)
        self.value = value


@dataclass(frozen=True, slots=True)
class ReplySchema:
    """What the reply must look like: ``json_schema`` (None: any JSON) and the pydantic model."""

    json_schema: Mapping[str, Any] | None
    model: type[BaseModel] | None = None

    @classmethod
    def from_user(cls, value: object, *, label: str = "schema") -> ReplySchema:
        """Accept a pydantic model class, a JSON schema dict or ``"json"``; ``label`` names the argument."""
        if isinstance(value, ReplySchema):
            return value
        if isinstance(value, ResponseFormat):
            return cls.from_user(value.schema, label=label)
        if value == "json":
            return cls(None)
        if isinstance(value, type) and issubclass(value, BaseModel):
            return cls(value.model_json_schema(), model=value)
        if isinstance(value, Mapping):
            ResponseFormat(value)  # serialisable and shaped like a schema, as the wire needs
            _check_schema(value)
            return cls(dict(value))
        raise InvalidInputError(
            f"{label}: expected a pydantic model class or a JSON schema dict (or 'json'), "
            f"got {type(value).__name__}."
        )

    @property
    def name(self) -> str:
        return self.model.__name__ if self.model is not None else "the schema"

    @property
    def format(self) -> ResponseFormat:
        """What goes into the request's ``format``."""
        return ResponseFormat("json" if self.json_schema is None else self.json_schema)

    def parse(self, text: str) -> Any:
        """The reply as a model instance (pydantic) or decoded JSON; else ``ReplyValidationError``."""
        if self.model is not None:
            try:
                return self.model.model_validate_json(text)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "reply"
                more = exc.error_count() - 1
                raise ReplyValidationError(
                    f"Reply does not match {self.name}: {where}: {first.get('msg')}"
                    + (f" (and {more} more)" if more else "")
                ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReplyValidationError(f"Reply is not JSON ({exc.msg} at char {exc.pos})") from None
        if self.json_schema is not None:
            import jsonschema  # type: ignore[import-untyped]

            validator = jsonschema.validators.validator_for(self.json_schema)(self.json_schema)
            error = jsonschema.exceptions.best_match(validator.iter_errors(data))
            if error is not None:
                where = ".".join(str(p) for p in error.absolute_path) or "reply"
                raise ReplyValidationError(
                    f"Reply does not match the schema: {where}: {error.message}", value=data
                )
        return data

    def columns(self) -> ReplyColumns:
        """The schema as batch columns; it must describe an object with properties."""
        if self.model is not None:
            fields = self.model.model_fields
            dtypes = {name: _dtype_of_annotation(info.annotation) for name, info in fields.items()}
            return ReplyColumns(self, dtypes)
        props = self.json_schema.get("properties") if self.json_schema is not None else None
        if (
            self.json_schema is None
            or self.json_schema.get("type") != "object"
            or not isinstance(props, Mapping)
            or not props
        ):
            raise InvalidInputError(
                "A batch schema must describe an object with properties "
                "(each property becomes a column).",
                hint='e.g. {"type": "object", "properties": {"label": {"type": "string"}}}',
            )
        return ReplyColumns(self, {str(name): _dtype_of_json(spec) for name, spec in props.items()})


@dataclass(frozen=True, slots=True)
class ReplyColumns:
    """A schema spread into columns: one per top-level field, each with its pandas dtype."""

    schema: ReplySchema
    dtypes: Mapping[str, ColumnType]

    @classmethod
    def from_user(cls, value: object) -> ReplyColumns:
        return ReplySchema.from_user(value).columns()

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.dtypes)

    @property
    def format(self) -> ResponseFormat:
        return self.schema.format

    def parse(self, text: str) -> dict[str, Any]:
        """The reply's field values, by column; else ``ReplyValidationError``."""
        parsed = self.schema.parse(text)
        if isinstance(parsed, BaseModel):
            dumped = parsed.model_dump(mode="python")
            return {name: _plain(dumped.get(name)) for name in self.fields}
        return {name: parsed.get(name) for name in self.fields}


def _plain(value: object) -> object:
    """Enum members become their values, so a categorical column can hold them."""
    return value.value if isinstance(value, enum.Enum) else value


def _check_schema(schema: Mapping[str, Any]) -> None:
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "schema"
        raise InvalidInputError(f"The JSON schema is invalid at {where}: {exc.message}") from None


def _dtype_of_json(spec: object) -> ColumnType:
    if isinstance(spec, Mapping):
        labels = spec.get("enum")
        if isinstance(labels, list) and labels and all(isinstance(v, str) for v in labels):
            return tuple(labels)
        kind = spec.get("type")
        if isinstance(kind, list):  # ["integer", "null"]: nullable dtypes hold the null
            kinds = [k for k in kind if k != "null"]
            kind = kinds[0] if len(kinds) == 1 else None
        if isinstance(kind, str):
            return _JSON_DTYPES.get(kind, "object")
    return "object"


def _dtype_of_annotation(annotation: object) -> ColumnType:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _dtype_of_annotation(args[0]) if len(args) == 1 else "object"
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return tuple(values)
        kinds = {type(v) for v in values}
        return _PY_DTYPES.get(kinds.pop(), "object") if len(kinds) == 1 else "object"
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            labels = [m.value for m in annotation]
            return tuple(labels) if all(isinstance(v, str) for v in labels) else "object"
        for py_type, dtype in _PY_DTYPES.items():
            if annotation is py_type:
                return dtype
    return "object"
