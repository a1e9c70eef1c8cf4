"""``{name}`` references in a prompt, resolved from the notebook.

A prompt is mostly prose and often contains code or JSON with braces of its
own, so only three shapes are replaced: a plain name from the user namespace,
``{In[n]}``/``{Out[n]}`` (a cell's input or output), and ``{traceback}`` (the
last exception). Anything else in braces is left exactly as written; ``{{``
and ``}}`` give literal braces. A name that does not exist is left as is and
reported, and a value longer than the limit is cut with a visible marker and
reported, so the model never silently sees something other than what the user
meant.
"""

from __future__ import annotations

import re
import sys
import traceback as tb_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

#: ``{{``, ``}}`` or one reference; the name part is matched loosely and checked after.
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)(?:\[(-?\d+)\])?\}")
TRACEBACK_NAME = "traceback"
DEFAULT_MAX_CHARS = 8_000


@dataclass(slots=True)
class Interpolated:
    """The prompt to send plus what the user should be told about it."""

    text: str
    warnings: list[str] = field(default_factory=list)
    images: list[object] = field(default_factory=list)
    references: list[str] = field(default_factory=list)


def truncate(text: str, limit: int, label: str) -> tuple[str, str | None]:
    """``text`` cut to ``limit`` characters with a marker, and a warning when it was cut."""
    if limit <= 0 or len(text) <= limit:
        return text, None
    cut = len(text) - limit
    marker = f"\n…[truncated: {cut:,} of {len(text):,} characters left out]"
    return (
        text[:limit] + marker,
        f"{{{label}}} is {len(text):,} characters; only the first {limit:,} were sent.",
    )


def last_traceback() -> str | None:
    """The traceback of the last exception the user saw, without IPython's own frames."""
    value = getattr(sys, "last_value", None)
    if value is None:
        return None
    tb: TracebackType | None = getattr(sys, "last_traceback", None)
    while tb is not None and "IPython" in tb.tb_frame.f_code.co_filename.split("/")[-3:]:
        tb = tb.tb_next
    return "".join(tb_module.format_exception(type(value), value, tb)).rstrip()


def interpolate(
    prompt: str,
    namespace: Mapping[str, Any],
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    is_image: Callable[[object], bool] | None = None,
    traceback_text: Callable[[], str | None] = last_traceback,
) -> Interpolated:
    """Replace references in ``prompt`` (see the module docstring)."""
    result = Interpolated(text="")
    pieces: list[str] = []
    position = 0
    for match in _TOKEN.finditer(prompt):
        pieces.append(prompt[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            pieces.append(token[0])
            continue
        replacement = _resolve(match, namespace, result, is_image, traceback_text)
        if replacement is None:
            pieces.append(token)
            continue
        value = namespace.get(match.group(1)) if match.group(2) is None else None
        if len(replacement) > max_chars and _is_frame(value):
            replacement, note = summarise_frame(value, token.strip("{}"), max_chars)
            result.warnings.append(note)
        text, warning = truncate(replacement, max_chars, token.strip("{}"))
        if warning:
            result.warnings.append(warning)
        result.references.append(token)
        pieces.append(text)
    pieces.append(prompt[position:])
    result.text = "".join(pieces)
    return result


def _resolve(
    match: re.Match[str],
    namespace: Mapping[str, Any],
    result: Interpolated,
    is_image: Callable[[object], bool] | None,
    traceback_text: Callable[[], str | None],
) -> str | None:
    name, index = match.group(1), match.group(2)
    token = match.group(0)
    if index is not None:
        if name not in ("In", "Out"):
            return None  # e.g. {items[0]}: not ours, leave it
        return _cell(name, int(index), namespace, result, token)
    if name == TRACEBACK_NAME:
        text = traceback_text()
        if text is None:
            result.warnings.append(f"{token}: no exception has been raised yet; left as is.")
        return text
    if name not in namespace:
        result.warnings.append(f"{token}: no variable named {name!r}; left as is.")
        return None
    value = namespace[name]
    if is_image is not None and is_image(value):
        result.images.append(value)
        return f"[image {len(result.images)}: {name}]"
    return as_text(value)


def _cell(
    kind: str, index: int, namespace: Mapping[str, Any], result: Interpolated, token: str
) -> str | None:
    if kind == "In":
        inputs = namespace.get("In")
        if isinstance(inputs, list) and -len(inputs) <= index < len(inputs) and index != 0:
            return str(inputs[index])
        result.warnings.append(f"{token}: there is no cell input {index}; left as is.")
        return None
    outputs = namespace.get("Out")
    if isinstance(outputs, Mapping) and index in outputs:
        return as_text(outputs[index])
    result.warnings.append(f"{token}: cell {index} has no output; left as is.")
    return None


def _is_frame(value: object) -> bool:
    return all(callable(getattr(value, a, None)) for a in ("head", "tail", "describe", "to_string"))


def summarise_frame(frame: Any, label: str, max_chars: int) -> tuple[str, str]:
    """A frame too long to send whole: its shape, first and last rows and ``describe()``.

    Fewer rows are shown until the summary fits ``max_chars``; the note says what was sent.
    """
    shape: tuple[int, ...] = tuple(getattr(frame, "shape", (len(frame),)))
    size = f"{shape[0]:,} rows x {shape[1]:,} columns" if len(shape) > 1 else f"{shape[0]:,} rows"
    try:
        described = frame.describe(include="all").to_string()
    except (TypeError, ValueError):
        described = frame.describe().to_string()
    text = ""
    for rows in (10, 5, 3, 1):
        text = (
            f"[{label}: {size}; first and last {rows} rows, then describe()]\n"
            f"{frame.head(rows).to_string()}\n...\n{frame.tail(rows).to_string()}\n\n"
            f"describe():\n{described}"
        )
        if len(text) <= max_chars:
            break
    note = (
        f"{{{label}}} is a {size} table, too long to send whole; sent its first and last "
        f"rows and describe() instead ({len(text):,} characters)."
    )
    return text, note


def as_text(value: object) -> str:
    """How a value reads in a prompt: text as is, tables as aligned text, the rest as repr."""
    if isinstance(value, str):
        return value
    to_string = getattr(value, "to_string", None)
    if callable(to_string):  # pandas DataFrame / Series: aligned, not elided like repr
        try:
            text = to_string()
        except TypeError:
            text = None
        if isinstance(text, str):
            return text
    return repr(value)
