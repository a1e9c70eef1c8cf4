"""The progress bar: rows done, failures, live tokens/s and ETA.

``tqdm.auto`` draws a widget in a notebook and text in a terminal. The bar is
owned and refreshed by the calling thread only (the batch's loop thread never
touches it), so widget messages come from the kernel's thread as usual.
"""

from __future__ import annotations

import importlib
import time
from typing import Any


class Progress:
    def __init__(self, total: int, *, enabled: bool, description: str) -> None:
        self._bar: Any = None
        self._started = time.monotonic()
        if enabled and total:
            tqdm = importlib.import_module("tqdm.auto").tqdm
            self._bar = tqdm(total=total, desc=description, unit="row", dynamic_ncols=True)

    def update(self, done: int, failed: int, tokens: int) -> None:
        if self._bar is None:
            return
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._bar.set_postfix(failed=failed, tok_s=f"{tokens / elapsed:.0f}", refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
