"""One check for the counts users pass (concurrency, retries, sample sizes ...).

Python's ``True`` is an ``int`` and ``2.0`` is not, so "a whole number" needs three
tests each time; written out at every keyword they drifted in wording. Here once.
"""

from __future__ import annotations

from typing import overload

from .errors import InvalidInputError


@overload
def whole_number(name: str, value: object, minimum: int) -> int: ...


@overload
def whole_number(name: str, value: object, minimum: int, *, optional: bool) -> int | None: ...


def whole_number(name: str, value: object, minimum: int, *, optional: bool = False) -> int | None:
    """``value`` if it is an ``int`` (not a bool) of at least ``minimum``; ``None`` if optional."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        either = " or None" if optional else ""
        raise InvalidInputError(
            f"{name} must be a whole number >= {minimum}{either}, got {value!r}."
        )
    return value
