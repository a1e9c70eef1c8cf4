"""Templates are checked against the frame's columns before anything is sent."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ollama_nb.batch.template import MissingValueError, PromptTemplate, render_with
from ollama_nb.domain import InvalidInputError

COLUMNS = ["review", "product name", 3, "price"]


def test_renders_columns_with_spaces_ints_and_format_specs() -> None:
    t = PromptTemplate.parse("{product name} ({3}) at {price:.2f}: {review!r}", COLUMNS)
    row = {"review": "ok", "product name": "lamp", 3: "x", "price": 4.5}
    assert t.render(row) == "lamp (x) at 4.50: 'ok'"
    assert t.columns == ("product name", 3, "price", "review")


def test_double_braces_are_literal() -> None:
    t = PromptTemplate.parse('Reply as {{"label": ...}} for {review}', COLUMNS)
    assert t.render({"review": "fine"}) == 'Reply as {"label": ...} for fine'


def test_unknown_column_is_named_with_a_suggestion() -> None:
    with pytest.raises(InvalidInputError) as err:
        PromptTemplate.parse("Classify {reveiw}", COLUMNS)
    assert "'reveiw'" in str(err.value)
    assert "{review}" in str(err.value)


def test_template_without_placeholder_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="no \\{column\\} placeholder"):
        PromptTemplate.parse("Classify this {{thing}}", COLUMNS)


def test_positional_placeholder_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="positional"):
        PromptTemplate.parse("Classify {}", COLUMNS)


def test_unbalanced_brace_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="malformed"):
        PromptTemplate.parse("Classify {review", COLUMNS)


@pytest.mark.parametrize("missing", [None, math.nan, pd.NA])
def test_missing_value_is_reported_per_row(missing: object) -> None:
    t = PromptTemplate.parse("Classify {review}", COLUMNS)
    with pytest.raises(MissingValueError, match="'review'"):
        t.render({"review": missing})


def test_bad_format_spec_names_the_column() -> None:
    t = PromptTemplate.parse("{price:.2f}", COLUMNS)
    with pytest.raises(InvalidInputError, match="'price'"):
        t.render({"price": "cheap"})


def test_callable_must_return_text() -> None:
    assert render_with(lambda row: f"about {row['review']}", {"review": "x"}) == "about x"
    with pytest.raises(InvalidInputError, match="must return text"):
        render_with(lambda row: 42, {})
    with pytest.raises(MissingValueError):
        render_with(lambda row: None, {})
