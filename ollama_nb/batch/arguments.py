"""Batch functions take one typed arguments object, and still show every keyword.

``batch``/``abatch`` and ``embed_column``/``aembed_column`` take a dozen
keywords each. Written out on every twin (and handed on as ``locals()``) they
were four copies to keep in step. Instead the keywords are the fields of one
frozen dataclass (names, types and defaults in one place); the function body
takes that object, and ``keyword_form`` gives the public function the
dataclass's keywords back: mypy checks callers against them (``ParamSpec``),
and ``help()``, ``batch?`` and tab completion read them from ``__signature__``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

P = ParamSpec("P")
Frame = TypeVar("Frame")
First = TypeVar("First")
Second = TypeVar("Second")
Args = TypeVar("Args")
R = TypeVar("R")


def keyword_form(
    arguments: Callable[P, Args],
) -> Callable[[Callable[[Frame, First, Args], R]], Callable[Concatenate[Frame, First, P], R]]:
    """``f(frame, first, args)`` becomes ``f(frame, first, /, **fields of args)``; async stays async."""

    def decorate(
        body: Callable[[Frame, First, Args], R],
    ) -> Callable[Concatenate[Frame, First, P], R]:
        return cast(Callable[Concatenate[Frame, First, P], R], _keyword_form(body, arguments, 2))

    return decorate


def keyword_form3(
    arguments: Callable[P, Args],
) -> Callable[
    [Callable[[Frame, First, Second, Args], R]], Callable[Concatenate[Frame, First, Second, P], R]
]:
    """``keyword_form`` for three leading arguments (``compare(df, models, template, ...)``)."""

    def decorate(
        body: Callable[[Frame, First, Second, Args], R],
    ) -> Callable[Concatenate[Frame, First, Second, P], R]:
        wrapped = _keyword_form(body, arguments, 3)
        return cast(Callable[Concatenate[Frame, First, Second, P], R], wrapped)

    return decorate


def _keyword_form(
    body: Callable[..., Any], arguments: Callable[..., Any], leading: int
) -> Callable[..., Any]:
    public = _signature(body, arguments, leading)

    def build(lead: tuple[Any, ...], args: Any, kwargs: Any) -> Any:
        try:
            public.bind(*lead, *args, **kwargs)
        except TypeError as exc:  # name the function the user called, not the dataclass
            raise TypeError(f"{body.__name__}(): {exc}") from None
        return arguments(*args, **kwargs)

    call: Any  # a function that gets a __signature__ below
    if inspect.iscoroutinefunction(body):

        async def call_async(*given: Any, **kwargs: Any) -> Any:
            lead, rest = given[:leading], given[leading:]
            return await body(*lead, build(lead, rest, kwargs))

        call = call_async
    else:

        def call_sync(*given: Any, **kwargs: Any) -> Any:
            lead, rest = given[:leading], given[leading:]
            return body(*lead, build(lead, rest, kwargs))

        call = call_sync
    functools.update_wrapper(call, body)
    del call.__wrapped__  # inspect must not follow it back to ``args``
    call.__signature__ = public
    return call  # type: ignore[no-any-return]


def _signature(
    body: Callable[..., Any], arguments: Callable[..., Any], leading: int
) -> inspect.Signature:
    """The body's leading parameters (positional-only), then the arguments' keywords."""
    first = list(inspect.signature(body).parameters.values())[:leading]
    keywords = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(arguments).parameters.values()
    ]
    return inspect.signature(body).replace(
        parameters=[p.replace(kind=inspect.Parameter.POSITIONAL_ONLY) for p in first] + keywords
    )
