"""A clock that moves only when told: for tests of timeouts, TTLs and cool-downs."""

from __future__ import annotations


class ManualClock:
    """Implements the ``Clock`` port; ``advance()`` moves both readings together."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
