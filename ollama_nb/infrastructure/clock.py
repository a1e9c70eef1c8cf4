"""The real clock; tests inject their own."""

from __future__ import annotations

import time


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
