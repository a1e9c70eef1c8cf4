"""Model names as Ollama spells them: ``[host/][namespace/]model[:tag]``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidInputError

_PART = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_NAME_RE = re.compile(
    rf"^(?:{_PART}(?::\d+)?/)?(?:{_PART}/)?{_PART}(?::[A-Za-z0-9_][A-Za-z0-9_.\-]*)?$"
)
_MAX_LEN = 350

DEFAULT_TAG = "latest"


@dataclass(frozen=True, slots=True)
class ModelName:
    """A validated model reference.

    Ollama treats ``llama3.2`` and ``llama3.2:latest`` as the same model and
    compares names case-insensitively; ``canonical`` is that comparison key, while
    ``value`` keeps what the user typed so messages quote them back exactly.
    """

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str):
            raise InvalidInputError(f"A model name must be text, got {type(self.value).__name__}.")
        stripped = self.value.strip()
        if not stripped:
            raise InvalidInputError(
                "No model given.", hint="Name one (e.g. `llama3.2`) or set a default model."
            )
        if len(stripped) > _MAX_LEN or not _NAME_RE.match(stripped):
            raise InvalidInputError(
                f"{self.value!r} is not a valid model name.",
                hint="Use letters, digits, '.', '-', '_' as in `llama3.2:3b` or `namespace/model:tag`.",
            )
        object.__setattr__(self, "value", stripped)

    @property
    def tag(self) -> str:
        last = self.value.rsplit("/", 1)[-1]
        return last.split(":", 1)[1] if ":" in last else DEFAULT_TAG

    @property
    def canonical(self) -> str:
        """Lower-cased name with an explicit tag: equal for names Ollama treats as equal."""
        last = self.value.rsplit("/", 1)[-1]
        full = self.value if ":" in last else f"{self.value}:{DEFAULT_TAG}"
        return full.lower()

    def matches(self, other: str | ModelName) -> bool:
        other_name = other if isinstance(other, ModelName) else ModelName(other)
        return self.canonical == other_name.canonical

    def __str__(self) -> str:
        return self.value
