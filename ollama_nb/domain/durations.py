"""Go's ``time.ParseDuration``: the one reader of the durations Ollama takes.

Ollama reads a request's ``keep_alive`` and ``OLLAMA_KEEP_ALIVE`` with Go's parser. A client
that accepted what Go refuses would send requests the server answers with 400, and a
stand-in that read them differently would make keep-alive tests prove nothing, so the
client's ``KeepAlive`` and the serving side share this one function.
"""

from __future__ import annotations

import re

_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign, as Go accepts
    "\u03bcs": 1e-6,  # Greek small mu, as Go accepts
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
#: Go keeps a duration in an int64 of nanoseconds and refuses anything longer (~292 years).
_MAX_SECONDS = (2**63 - 1) / 1e9


class DurationError(ValueError):
    """A string that Go's ``time.ParseDuration`` would reject."""


def parse_go_duration(text: str) -> float:
    """``"5m"``, ``"1h30m"``, ``"300ms"``, ``"-1s"``, ``".5h"`` or ``"0"`` in seconds.

    As Go: an optional sign, then one or more number-and-unit parts; a bare number other
    than ``0`` has no unit and is refused, as is an empty string.
    """
    s = text.strip()
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise DurationError(f'time: invalid duration "{text}"')
    pos = 0
    total = 0.0
    while pos < len(s):
        match = _PART.match(s, pos)
        if match is None:
            raise DurationError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if total > _MAX_SECONDS:
        raise DurationError(f'time: invalid duration "{text}"')
    return sign * total
