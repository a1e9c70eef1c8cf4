"""What ``/api/show`` said about each model, kept while the model stays the same.

Every chat checks the model's capabilities and a long prompt checks its context
window; both read ``/api/show``, which on a real server parses the model file
(tens of milliseconds). A model only changes when it is pulled, created, copied
over or deleted, and then its digest and ``modified_at`` change in ``/api/tags``.
So answers are kept per (host, model) and dropped when we change the model
ourselves, when ``/api/tags`` shows a different ``modified_at`` or digest, or
when the server says the model is gone.

Everything here runs on the one loop thread: no lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..domain import ModelInfo, ModelName, ModelSummary


@dataclass(slots=True)
class _Entry:
    info: ModelInfo
    digest: str | None = None  # learned from the next /api/tags


@dataclass(slots=True)
class ModelInfos:
    """``/api/show`` answers by (host, canonical model name)."""

    _entries: dict[tuple[str, str], _Entry] = field(default_factory=dict)

    def get(self, host: str, model: ModelName) -> ModelInfo | None:
        entry = self._entries.get((host, model.canonical))
        return entry.info if entry is not None else None

    def put(self, host: str, model: ModelName, info: ModelInfo) -> None:
        self._entries[(host, model.canonical)] = _Entry(info)

    def forget(self, host: str, model: ModelName) -> None:
        self._entries.pop((host, model.canonical), None)

    def saw(self, host: str, installed: Iterable[ModelSummary]) -> None:
        """``/api/tags`` answered: drop what changed or vanished since it was shown."""
        current = {_canonical(s.name): s for s in installed}
        for key in [k for k in self._entries if k[0] == host]:
            entry = self._entries[key]
            summary = current.get(key[1])
            if summary is None:
                del self._entries[key]
                continue
            shown = entry.info.modified_at
            listed = summary.modified_at
            if shown is not None and listed is not None and shown != listed:
                del self._entries[key]
            elif entry.digest is None:
                entry.digest = summary.digest
            elif summary.digest != entry.digest:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


def _canonical(name: str) -> str:
    """``ModelName.canonical`` for a name the server listed (not validated: it is theirs)."""
    last = name.rsplit("/", 1)[-1]
    return (name if ":" in last else f"{name}:latest").lower()
