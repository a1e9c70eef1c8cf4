"""Ollama's rules for ``keep_alive`` and ``OLLAMA_KEEP_ALIVE``, over Go's duration parser.

A notebook user copies ``"1h30m"`` or ``-1`` from Ollama's docs; the stand-in must read
them the same way or keep-alive tests would prove nothing about the real server.
"""

from __future__ import annotations

import math

from ..domain.durations import DurationError, parse_go_duration

__all__ = [
    "FOREVER",
    "DurationError",
    "keep_alive_from_env",
    "keep_alive_from_request",
    "parse_go_duration",
]

FOREVER = math.inf
"""Seconds value meaning "never unload" (Ollama turns any negative duration into this)."""


def keep_alive_from_env(text: str, default: float) -> float:
    """Read ``OLLAMA_KEEP_ALIVE`` as Ollama's envconfig does.

    Plain integers are seconds, anything else is a Go duration, negative means forever and
    an unparsable value silently keeps the default (Ollama logs and carries on).
    """
    value = text.strip().strip("\"' ")
    if not value:
        return default
    try:
        seconds = float(int(value))
    except ValueError:
        try:
            seconds = parse_go_duration(value)
        except DurationError:
            return default
    return FOREVER if seconds < 0 else seconds


def keep_alive_from_request(value: object) -> float:
    """Read a request's ``keep_alive`` as Ollama's ``api.Duration`` JSON decoder does.

    Numbers are seconds, strings are Go durations (a bare ``"300"`` is an error there too),
    and negative values mean forever.
    """
    if isinstance(value, bool):
        raise DurationError("keep_alive must be a number of seconds or a duration string")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = parse_go_duration(value)
    else:
        raise DurationError("keep_alive must be a number of seconds or a duration string")
    return FOREVER if seconds < 0 else seconds
