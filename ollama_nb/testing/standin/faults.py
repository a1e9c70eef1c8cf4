"""Fault injection: make the next request(s) fail the way a real Ollama server can.

A fault is chosen per request, either by the client (``X-Standin-Fault`` header) or armed
in advance through ``POST /_standin/faults`` for clients that cannot set headers (retry
tests: "503 for the next two requests, then succeed"). At most one fault applies to a
request; a header wins over an armed fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

RUNNER_TERMINATED = "llama runner process has terminated: exit status 2"
MIDSTREAM_ERROR = "an error was encountered while running the model: unexpected EOF"


class Fault(StrEnum):
    """The faults the stand-in can inject."""

    ERROR_MIDSTREAM = "error_midstream"
    """After ``after`` tokens, a final ``{"error": ...}`` line on the 200 stream."""
    DROP = "drop"
    """Close the TCP connection after ``after`` tokens, mid-response."""
    SLOW_LOAD = "slow_load"
    """Force a cold load that takes ``seconds`` longer."""
    HTTP_500 = "http_500"
    """Answer 500 with Ollama's runner-crash message."""
    HTTP_503 = "http_503"
    """Answer 503 with Ollama's queue-full message."""
    STALL = "stall"
    """Send headers, then hang until the client goes away."""


class FaultSpecError(ValueError):
    """A fault request the stand-in cannot honour (unknown name, bad count...)."""


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """One fault applied to one request."""

    fault: Fault
    after: int = 0
    seconds: float | None = None


@dataclass(slots=True)
class ArmedFault:
    """A fault waiting for ``remaining`` requests to ``path`` (any path when ``None``)."""

    plan: FaultPlan
    remaining: int
    path: str | None = None

    def as_json(self) -> dict[str, object]:
        """The admin endpoint's view of this entry."""
        return {
            "fault": self.plan.fault.value,
            "remaining": self.remaining,
            "path": self.path,
            "after": self.plan.after,
            "seconds": self.plan.seconds,
        }


def parse_fault(name: object) -> Fault:
    """A :class:`Fault` from its wire name, or :class:`FaultSpecError` naming the options."""
    try:
        return Fault(str(name).strip().lower())
    except ValueError:
        known = ", ".join(f.value for f in Fault)
        raise FaultSpecError(f"unknown fault {name!r}; expected one of: {known}") from None


def _non_negative_int(value: object, what: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise FaultSpecError(f"{what} must be a non-negative integer") from None
    if number < 0:
        raise FaultSpecError(f"{what} must be a non-negative integer")
    return number


def _seconds(value: object) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(str(value))
    except ValueError:
        raise FaultSpecError("seconds must be a non-negative number") from None
    if seconds < 0:
        raise FaultSpecError("seconds must be a non-negative number")
    return seconds


class FaultBook:
    """Armed faults, consumed in the order they were armed."""

    def __init__(self) -> None:
        self._armed: list[ArmedFault] = []

    def arm(self, spec: Mapping[str, object]) -> ArmedFault:
        """Arm ``{"fault", "count", "path", "after", "seconds"}`` from the admin endpoint."""
        plan = FaultPlan(
            fault=parse_fault(spec.get("fault")),
            after=_non_negative_int(spec.get("after", 0), "after"),
            seconds=_seconds(spec.get("seconds")),
        )
        count = _non_negative_int(spec.get("count", 1), "count")
        path = spec.get("path")
        if path is not None and not isinstance(path, str):
            raise FaultSpecError("path must be a string such as '/api/chat'")
        entry = ArmedFault(plan=plan, remaining=count, path=path)
        if count:
            self._armed.append(entry)
        return entry

    def take(self, path: str) -> FaultPlan | None:
        """The fault for a request to ``path``, consuming one use of it."""
        for entry in self._armed:
            if entry.path is None or entry.path == path:
                entry.remaining -= 1
                if entry.remaining <= 0:
                    self._armed.remove(entry)
                return entry.plan
        return None

    def armed(self) -> list[ArmedFault]:
        """Faults still waiting."""
        return list(self._armed)

    def clear(self) -> None:
        """Disarm everything."""
        self._armed.clear()


def plan_from_headers(headers: Mapping[str, str]) -> FaultPlan | None:
    """The fault a client asked for with ``X-Standin-Fault`` (and ``-After``/``-Seconds``)."""
    name = headers.get("X-Standin-Fault")
    if not name:
        return None
    return FaultPlan(
        fault=parse_fault(name),
        after=_non_negative_int(headers.get("X-Standin-Fault-After", "0"), "X-Standin-Fault-After"),
        seconds=_seconds(headers.get("X-Standin-Fault-Seconds")),
    )
