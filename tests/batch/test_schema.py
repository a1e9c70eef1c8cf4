"""Schemas become Ollama's format, then typed columns; a bad reply keeps its text."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel

from ollama_nb.batch import ReplyColumns, ReplySchema, ReplyValidationError
from ollama_nb.domain import InvalidInputError


class Review(BaseModel):
    sentiment: Literal["positive", "negative", "mixed"]
    stars: int
    price: float | None = None
    tags: list[str] = []


def test_pydantic_model_gives_format_fields_and_dtypes() -> None:
    schema = ReplyColumns.from_user(Review)
    assert schema.fields == ("sentiment", "stars", "price", "tags")
    assert schema.format.to_wire() == Review.model_json_schema()
    assert schema.dtypes == {
        "sentiment": ("positive", "negative", "mixed"),
        "stars": "Int64",
        "price": "Float64",
        "tags": "object",
    }
    assert schema.parse('{"sentiment": "mixed", "stars": 3, "tags": ["a"]}') == {
        "sentiment": "mixed",
        "stars": 3,
        "price": None,
        "tags": ["a"],
    }


def test_pydantic_rejection_says_where() -> None:
    schema = ReplyColumns.from_user(Review)
    with pytest.raises(ReplyValidationError, match="sentiment"):
        schema.parse('{"sentiment": "meh", "stars": 3}')
    with pytest.raises(ReplyValidationError, match="Review"):
        schema.parse('{"sentiment": "posi')


def test_json_schema_is_checked_with_jsonschema() -> None:
    schema = ReplyColumns.from_user(
        {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": ["spam", "ham"]},
                "confidence": {"type": "number"},
                "count": {"type": ["integer", "null"]},
            },
            "required": ["label"],
        }
    )
    assert schema.dtypes == {"label": ("spam", "ham"), "confidence": "Float64", "count": "Int64"}
    assert schema.parse('{"label": "ham", "confidence": 0.5}') == {
        "label": "ham",
        "confidence": 0.5,
        "count": None,
    }
    with pytest.raises(ReplyValidationError, match="label"):
        schema.parse('{"label": "eggs"}')
    with pytest.raises(ReplyValidationError, match="not JSON"):
        schema.parse("label: ham")


def test_unusable_schemas_are_refused_up_front() -> None:
    with pytest.raises(InvalidInputError, match="object with properties"):
        ReplyColumns.from_user({"type": "string"})
    with pytest.raises(InvalidInputError, match="invalid"):
        ReplyColumns.from_user({"type": "object", "properties": {"x": {"type": "strin"}}})
    with pytest.raises(InvalidInputError, match="pydantic model class or a JSON schema"):
        ReplyColumns.from_user(Review(sentiment="mixed", stars=1))


def test_one_schema_reads_chat_replies_too() -> None:
    """The same reader serves ``%%chat --schema``/``-f json`` and ``chat(format=...)``."""
    any_json = ReplySchema.from_user("json")
    assert any_json.format.to_wire() == "json"
    assert any_json.parse("[1, 2]") == [1, 2]
    with pytest.raises(ReplyValidationError, match="not JSON"):
        any_json.parse("nope")
    review = ReplySchema.from_user(Review).parse('{"sentiment": "mixed", "stars": 3}')
    assert isinstance(review, Review) and review.stars == 3
    counted = ReplySchema.from_user({"type": "object", "properties": {"n": {"type": "integer"}}})
    with pytest.raises(ReplyValidationError) as mismatch:
        counted.parse('{"n": "three"}')
    assert mismatch.value.value == {"n": "three"}  # what came back stays readable
    with pytest.raises(InvalidInputError, match="object with properties"):
        any_json.columns()
    with pytest.raises(InvalidInputError, match=r"^--schema x: expected a pydantic"):
        ReplySchema.from_user(42, label="--schema x")
