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
Args = TypeVar("Args")
R = TypeVar("R")


def keyword_form(
    arguments: Callable[P, Args],
) -> Callable[[Callable[[Frame, First, Args], R]], Callable[Concatenate[Frame, First, P], R]]:
    """``f(frame, first, args)`` becomes ``f(frame, first, /, **fields of args)``; async stays async."""

    def decorate(
        body: Callable[[Frame, First, Args], R],
    ) -> Callable[Concatenate[Frame, First, P], R]:
        public = _signature(body, arguments)

        def build(frame: Frame, first: First, args: Any, kwargs: Any) -> Args:
            try:
                public.bind(frame, first, *args, **kwargs)
            except TypeError as exc:  # name the function the user called, not the dataclass
                raise TypeError(f"{body.__name__}(): {exc}") from None
            return arguments(*args, **kwargs)

        if inspect.iscoroutinefunction(body):
            run_async = body  # narrowed: a coroutine function

            async def call_async(
                frame: Frame, first: First, /, *args: P.args, **kwargs: P.kwargs
            ) -> Any:
                return await run_async(frame, first, build(frame, first, args, kwargs))

            call = cast(Callable[Concatenate[Frame, First, P], R], call_async)
        else:

            def call_sync(frame: Frame, first: First, /, *args: P.args, **kwargs: P.kwargs) -> R:
                return body(frame, first, build(frame, first, args, kwargs))

            call = call_sync
        functools.update_wrapper(call, body)
        del call.__wrapped__  # type: ignore[attr-defined]  # inspect must not follow it back to ``args``
        call.__signature__ = public  # type: ignore[attr-defined]
        return call

    return decorate


def _signature(body: Callable[..., Any], arguments: Callable[..., Any]) -> inspect.Signature:
    """The body's two leading parameters (positional-only), then the arguments' keywords."""
    leading = list(inspect.signature(body).parameters.values())[:2]
    keywords = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(arguments).parameters.values()
    ]
    return inspect.signature(body).replace(
        parameters=[p.replace(kind=inspect.Parameter.POSITIONAL_ONLY) for p in leading] + keywords
    )
