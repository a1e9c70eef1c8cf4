"""Structured replies: a schema sent as Ollama's ``format``, checked, then spread into columns.

Ollama constrains decoding to the schema, but a reply can still fail to parse
(``num_predict`` cut it short, a model ignored part of the schema). Such a row
keeps its raw text and gets an error; it never stops the batch. A pydantic
model gives typed fields; a plain JSON schema is checked with ``jsonschema``.
"""

from __future__ import annotations

import importlib
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..domain import InvalidInputError, ResponseFormat

#: pandas dtypes for JSON/Python scalar types; everything else stays ``object``.
_JSON_DTYPES = {"integer": "Int64", "number": "Float64", "boolean": "boolean", "string": "str"}
_PY_DTYPES: dict[type, str] = {int: "Int64", float: "Float64", bool: "boolean", str: "str"}

#: A column's type: a pandas dtype name, or the categories of a closed set of labels.
ColumnType = str | tuple[str, ...]


class ReplyValidationError(InvalidInputError):
    """The reply did not match the schema; the raw text is kept beside this message."""


@dataclass(frozen=True, slots=True)
class OutputSchema:
    """What the reply must look like and the columns it becomes."""

    json_schema: Mapping[str, Any]
    fields: tuple[str, ...]
    dtypes: Mapping[str, ColumnType]
    model: type[Any] | None = None  # a pydantic BaseModel subclass

    @property
    def format(self) -> ResponseFormat:
        return ResponseFormat(self.json_schema)

    @classmethod
    def from_user(cls, schema: object) -> OutputSchema:
        """Accept a pydantic model class or a JSON schema (dict) describing an object."""
        json_schema_of = getattr(schema, "model_json_schema", None)
        if isinstance(schema, type) and callable(json_schema_of):
            js = json_schema_of()
            fields_info: Mapping[str, Any] = getattr(schema, "model_fields", {})
            dtypes = {
                name: _dtype_of_annotation(info.annotation) for name, info in fields_info.items()
            }
            return cls(js, tuple(fields_info), dtypes, model=schema)
        if isinstance(schema, Mapping):
            ResponseFormat(schema)  # same checks as a chat's format
            props = schema.get("properties")
            if schema.get("type") != "object" or not isinstance(props, Mapping) or not props:
                raise InvalidInputError(
                    "A batch schema must describe an object with properties "
                    "(each property becomes a column).",
                    hint='e.g. {"type": "object", "properties": {"label": {"type": "string"}}}',
                )
            _check_schema(schema)
            dtypes = {str(name): _dtype_of_json(spec) for name, spec in props.items()}
            return cls(dict(schema), tuple(str(n) for n in props), dtypes)
        raise InvalidInputError(
            f"schema must be a pydantic model class or a JSON schema dict, got {type(schema).__name__}."
        )

    def parse(self, text: str) -> dict[str, Any]:
        """The reply's fields, or ``ReplyValidationError`` saying what is wrong."""
        if self.model is not None:
            from pydantic import ValidationError

            try:
                instance = self.model.model_validate_json(text)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "reply"
                raise ReplyValidationError(
                    f"Reply does not match {self.model.__name__}: {where}: {first.get('msg')}"
                    + (f" ({exc.error_count()} problems)" if exc.error_count() > 1 else "")
                ) from None
            dumped: dict[str, Any] = instance.model_dump(mode="python")
            return {name: _plain(dumped.get(name)) for name in self.fields}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReplyValidationError(
                f"Reply is not JSON ({exc.msg} at char {exc.pos})."
            ) from None
        jsonschema = _jsonschema()
        error = jsonschema.exceptions.best_match(
            jsonschema.validators.validator_for(self.json_schema)(self.json_schema).iter_errors(
                data
            )
        )
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "reply"
            raise ReplyValidationError(f"Reply does not match the schema: {where}: {error.message}")
        return {name: data.get(name) for name in self.fields}


def _plain(value: object) -> object:
    """Enum members become their values, so a categorical column can hold them."""
    import enum

    return value.value if isinstance(value, enum.Enum) else value


def _jsonschema() -> Any:
    """``jsonschema`` (installed with jupyter_server), loaded only when a dict schema is used."""
    return importlib.import_module("jsonschema")


def _check_schema(schema: Mapping[str, Any]) -> None:
    jsonschema = _jsonschema()
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
        import enum

        if issubclass(annotation, enum.Enum):
            labels = [m.value for m in annotation]
            return tuple(labels) if all(isinstance(v, str) for v in labels) else "object"
        for py_type, dtype in _PY_DTYPES.items():
            if annotation is py_type:
                return dtype
    return "object"
