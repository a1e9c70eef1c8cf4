"""Prompt templates: ``{column}`` placeholders checked against the frame before anything runs.

A typo in a placeholder found after ten thousand requests is an afternoon lost, so
the template is parsed once up front: every placeholder must name a column, and a
template without any placeholder (the same prompt for every row) is refused.
``{{`` and ``}}`` stand for literal braces, as in ``str.format``. Placeholders
take the whole text between the braces as the column name (spaces and dots
included), with an optional ``!r``/``!s`` conversion and a ``:spec`` format.
"""

from __future__ import annotations

import difflib
import math
import numbers
import string
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..domain import InvalidInputError

RowFunction = Callable[[Any], object]


class MissingValueError(InvalidInputError):
    """A row has no value where its prompt needs one; the row is skipped, not failed."""


def is_missing(value: object) -> bool:
    """None, NaN and pandas' NA/NaT: nothing to put in a prompt."""
    if value is None:
        return True
    if isinstance(value, numbers.Real) and not isinstance(value, int) and math.isnan(value):
        return True
    import pandas as pd

    return value is pd.NA or value is pd.NaT


@dataclass(frozen=True, slots=True)
class _Field:
    column: Hashable
    conversion: str | None
    spec: str


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A parsed template: literal text and the columns it reads, in order."""

    source: str
    parts: tuple[str | _Field, ...]

    @property
    def columns(self) -> tuple[Hashable, ...]:
        """The columns the template reads, once each, in first-use order."""
        seen: dict[Hashable, None] = {}
        for part in self.parts:
            if isinstance(part, _Field):
                seen.setdefault(part.column, None)
        return tuple(seen)

    @classmethod
    def parse(cls, template: str, columns: Sequence[Hashable]) -> PromptTemplate:
        by_text = {str(c): c for c in columns}
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise InvalidInputError(
                f"The prompt template is malformed ({exc}).",
                hint="Write placeholders as {column}; write {{ and }} for literal braces.",
            ) from None
        parts: list[str | _Field] = []
        for literal, name, spec, conversion in parsed:
            if literal:
                parts.append(literal)
            if name is None:
                continue
            if name == "" or (name.isdigit() and name not in by_text):
                raise InvalidInputError(
                    "The prompt template has a positional placeholder {"
                    + name
                    + "}; name a column instead.",
                    hint=f"Columns: {_listing(by_text)}.",
                )
            if name not in by_text:
                close = difflib.get_close_matches(name, list(by_text), n=1)
                hint = f"Did you mean {{{close[0]}}}?" if close else None
                raise InvalidInputError(
                    f"The prompt template uses {{{name}}}, but the frame has no column {name!r} "
                    f"(columns: {_listing(by_text)}).",
                    hint=hint or "Write {{ and }} for literal braces.",
                )
            if spec and ("{" in spec):
                raise InvalidInputError(
                    f"Nested placeholders in the format of {{{name}}} are not supported."
                )
            parts.append(_Field(by_text[name], conversion, spec or ""))
        if not any(isinstance(p, _Field) for p in parts):
            raise InvalidInputError(
                "The prompt template has no {column} placeholder, so every row would get "
                "the same prompt.",
                hint=f"Add one of: {_listing(by_text)} (e.g. 'Summarise: {{text}}').",
            )
        return cls(template, tuple(parts))

    def render(self, row: Mapping[Hashable, object]) -> str:
        """The prompt for one row; a missing value raises ``MissingValueError``."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = row[part.column]
            if is_missing(value):
                raise MissingValueError(f"No value in column {part.column!r}.")
            if part.conversion == "r":
                value = repr(value)
            elif part.conversion == "a":
                value = ascii(value)
            elif part.conversion == "s":
                value = str(value)
            try:
                out.append(format(value, part.spec))
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"Cannot format column {part.column!r} value {value!r} with "
                    f"':{part.spec}' ({exc})."
                ) from None
        return "".join(out)


def render_with(function: RowFunction, row: object) -> str:
    """Call the user's ``row -> prompt`` function and insist on text back."""
    prompt = function(row)
    if is_missing(prompt):
        raise MissingValueError("The prompt function returned no prompt.")
    if not isinstance(prompt, str):
        raise InvalidInputError(
            f"The prompt function must return text, got {type(prompt).__name__}."
        )
    return prompt


def _listing(by_text: Mapping[str, object]) -> str:
    names = list(by_text)
    shown = ", ".join(names[:12])
    return shown + (f", … ({len(names)} in all)" if len(names) > 12 else "")
