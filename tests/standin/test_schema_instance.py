"""Structured outputs: generated instances validate against the schema they came from."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Literal

import pydantic
import pytest

from ollama_nb.testing.standin.schema_instance import instance_for

jsonschema = pytest.importorskip("jsonschema")


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(pydantic.BaseModel):
    street: str
    city: str = pydantic.Field(min_length=3, max_length=5)


class Person(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=0, le=150)
    height: float = pydantic.Field(gt=0)
    available: bool
    colour: Colour
    kind: Literal["a", "b"]
    nickname: str | None = None
    addresses: list[Address] = pydantic.Field(min_length=2)
    tags: tuple[str, int]
    born: dt.date
    home: Address | None
    friends: list[Person] = []


def test_pydantic_model_roundtrip() -> None:
    schema = Person.model_json_schema()
    value = instance_for(schema, "Ollama is 22 years old")
    jsonschema.validate(value, schema)
    person = Person.model_validate(value)
    assert person.age == 22
    assert len(person.addresses) >= 2


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "enum": ["x", "y"]},
        {"const": 5},
        {"type": "integer", "minimum": 100, "maximum": 200},
        {"type": "integer", "exclusiveMinimum": 3, "multipleOf": 5},
        {"type": "number", "maximum": -2.5},
        {"type": "array", "items": {"type": "boolean"}, "minItems": 3, "maxItems": 3},
        {"type": ["null", "string"], "minLength": 40},
        {"oneOf": [{"type": "null"}, {"type": "integer"}]},
        {"type": "object", "required": ["x"], "additionalProperties": False,
         "properties": {"x": {"type": "string", "format": "email"}}},
        {"type": "null"},
        {"type": "string", "maxLength": 2},
        {"type": "object", "nullable": True, "properties": {"a": {"type": "integer"}}},
    ],
)  # fmt: skip
def test_schema_shapes_validate(schema: dict[str, object]) -> None:
    jsonschema.validate(instance_for(schema, "numbers 7 and 9"), schema)


def test_recursive_schema_terminates() -> None:
    schema = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"child": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}},
                "required": ["child"],
            }
        },
        "$ref": "#/$defs/Node",
    }
    jsonschema.validate(instance_for(schema, "x"), schema)


def test_strings_come_from_the_prompt() -> None:
    value = instance_for({"type": "object", "properties": {"s": {"type": "string"}}}, "hello world")
    assert value == {"s": "hello world"}
