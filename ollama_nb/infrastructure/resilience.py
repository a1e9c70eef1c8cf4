"""Retries and a circuit breaker around the Ollama connection.

Retry only what is safe and likely to pass on a second try: failures to connect
and 503 (Ollama's queue is full). Never a 4xx, and never once an answer has
started streaming, because the user has already seen part of it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..application.ports import BreakerState, Clock
from ..domain import CircuitOpenError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3  # retries after the first try
    base_s: float = 0.25
    max_s: float = 4.0

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with full jitter, so many clients do not retry in step."""
        ceiling = min(self.max_s, self.base_s * (2**retry_number))
        return (rng or random).uniform(0, ceiling)


class CircuitBreaker:
    """Fails fast after ``threshold`` connection failures in a row.

    After ``cooldown_s`` it lets one trial request through (half-open): success
    closes it, failure opens it again for another cool-down.
    """

    def __init__(self, host: str, clock: Clock, *, threshold: int = 5, cooldown_s: float = 15.0):
        self.host = host
        self._clock = clock
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        if self._clock.monotonic() - self.opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def before_request(self) -> None:
        state = self.state
        if state == "open" or (state == "half_open" and self._trial_in_flight):
            assert self.opened_at is not None
            remaining = self.cooldown_s - (self._clock.monotonic() - self.opened_at)
            raise CircuitOpenError(self.host, max(remaining, 0.0) or self.cooldown_s)
        if state == "half_open":
            self._trial_in_flight = True

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        if self._trial_in_flight or self.consecutive_failures >= self.threshold:
            self.opened_at = self._clock.monotonic()
        self._trial_in_flight = False

    def reset(self) -> None:
        self.record_success()
