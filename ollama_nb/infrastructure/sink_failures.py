"""How a metrics sink that cannot write behaves: one warning, then quiet.

Telemetry must never fail a request, and a folder that is unwritable or a disk
that is full must not print a traceback on every request either. Every sink
(the JSON request log, the metrics store, a user's own sink behind ``FanOut``)
reports its first failure as one line that names the path and the fix, stays
quiet while the problem lasts, and says once more when writing works again.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("ollama_nb")

_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


def fix_for(error: BaseException, path: Path | None) -> str:
    """What the user can do about ``error`` while writing ``path``."""
    text = str(error).lower()
    full = (isinstance(error, OSError) and error.errno in _SPACE_ERRNOS) or (
        isinstance(error, sqlite3.Error) and ("full" in text or "disk i/o" in text)
    )
    if full:
        return "Free some disk space; saving resumes by itself."
    folder = path.parent if path is not None else None
    where = f"make {folder} writable" if folder is not None else "make the data folder writable"
    return f"To fix: {where}, or set OLLAMA_NB_DATA_DIR to a writable folder."


class FailureNotice:
    """The warn-once state of one sink; thread-safe (writers run on their own threads).

    A disk that is nearly full fails some writes and not others; the warning is
    shown at most once per ``QUIET_S`` and the recovery line only after a shown
    warning, so flapping costs two lines, not two per flap.
    """

    QUIET_S = 3600.0

    def __init__(
        self,
        what: str,
        path: Path | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.path = path
        self._monotonic = monotonic
        self._failing = False
        self._warned_at: float | None = None
        self._announce_recovery = False
        self._lock = threading.Lock()

    @property
    def failing(self) -> bool:
        return self._failing

    def failed(self, error: BaseException, consequence: str) -> None:
        """Record a failure; only the first of an outage (or of an hour) is shown."""
        now = self._monotonic()
        with self._lock:
            show = not self._failing and (
                self._warned_at is None or now - self._warned_at >= self.QUIET_S
            )
            self._failing = True
            if show:
                self._warned_at, self._announce_recovery = now, True
        if show:
            where = f" to {self.path}" if self.path is not None else ""
            log.warning(
                "ollama_nb: %s cannot be written%s (%s); %s %s",
                self.what,
                where,
                _short(error),
                consequence,
                fix_for(error, self.path),
            )
        else:
            log.debug("ollama_nb: %s still failing: %s", self.what, error)

    def recovered(self, detail: str = "") -> None:
        with self._lock:
            announce = self._failing and self._announce_recovery
            self._failing = False
            if announce:
                self._announce_recovery = False
        if announce:
            log.warning("ollama_nb: %s is being written again%s.", self.what, detail)


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    return text.splitlines()[0][:200]
