"""Go-style durations, because Ollama's ``keep_alive`` and ``OLLAMA_KEEP_ALIVE`` use them.

A notebook user copies ``"1h30m"`` or ``-1`` from Ollama's docs; the stand-in must read
them the same way or keep-alive tests would prove nothing about the real server.
"""

from __future__ import annotations

import math
import re

FOREVER = math.inf
"""Seconds value meaning "never unload" (Ollama turns any negative duration into this)."""

_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class DurationError(ValueError):
    """A string that Go's ``time.ParseDuration`` would reject."""


def parse_go_duration(text: str) -> float:
    """Parse ``"5m"``, ``"1h30m"``, ``"300ms"``, ``"-1s"`` or ``"0"`` into seconds."""
    s = text.strip()
    if not s:
        raise DurationError(f'time: invalid duration "{text}"')
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    pos = 0
    total = 0.0
    while pos < len(s):
        match = _PART.match(s, pos)
        if match is None:
            raise DurationError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos == 0:
        raise DurationError(f'time: invalid duration "{text}"')
    return sign * total


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
