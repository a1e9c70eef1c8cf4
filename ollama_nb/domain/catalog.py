"""What the server says about its models (``/api/tags``, ``/api/show``, ``/api/ps``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    # Go prints nanoseconds; Python's fromisoformat takes at most microseconds.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ModelDetails:
    family: str = ""
    families: tuple[str, ...] = ()
    parameter_size: str = ""
    quantization_level: str = ""
    format: str = ""
    parent_model: str = ""

    @classmethod
    def from_wire(cls, data: dict[str, Any] | None) -> ModelDetails:
        data = data or {}
        return cls(
            family=str(data.get("family") or ""),
            families=tuple(data.get("families") or ()),
            parameter_size=str(data.get("parameter_size") or ""),
            quantization_level=str(data.get("quantization_level") or ""),
            format=str(data.get("format") or ""),
            parent_model=str(data.get("parent_model") or ""),
        )


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """An installed model, from ``/api/tags``."""

    name: str
    size_bytes: int = 0
    digest: str = ""
    modified_at: datetime | None = None
    details: ModelDetails = field(default_factory=ModelDetails)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ModelSummary:
        return cls(
            name=str(data.get("name") or data.get("model") or ""),
            size_bytes=int(data.get("size") or 0),
            digest=str(data.get("digest") or ""),
            modified_at=_parse_time(data.get("modified_at")),
            details=ModelDetails.from_wire(data.get("details")),
        )


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Everything ``/api/show`` tells about one model."""

    name: str
    details: ModelDetails = field(default_factory=ModelDetails)
    capabilities: tuple[str, ...] = ()
    parameters: str = ""
    template: str = ""
    model_info: dict[str, Any] = field(default_factory=dict)
    modified_at: datetime | None = None

    @classmethod
    def from_wire(cls, name: str, data: dict[str, Any]) -> ModelInfo:
        return cls(
            name=name,
            details=ModelDetails.from_wire(data.get("details")),
            capabilities=tuple(data.get("capabilities") or ()),
            parameters=str(data.get("parameters") or ""),
            template=str(data.get("template") or ""),
            model_info=dict(data.get("model_info") or {}),
            modified_at=_parse_time(data.get("modified_at")),
        )

    @property
    def context_length(self) -> int | None:
        for key, value in self.model_info.items():
            if key.endswith(".context_length") and isinstance(value, int):
                return value
        return None

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities


@dataclass(frozen=True, slots=True)
class RunningModel:
    """A loaded model, from ``/api/ps``."""

    name: str
    size_bytes: int = 0
    size_vram_bytes: int = 0
    expires_at: datetime | None = None
    context_length: int | None = None
    details: ModelDetails = field(default_factory=ModelDetails)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> RunningModel:
        context = data.get("context_length")
        return cls(
            name=str(data.get("name") or data.get("model") or ""),
            size_bytes=int(data.get("size") or 0),
            size_vram_bytes=int(data.get("size_vram") or 0),
            expires_at=_parse_time(data.get("expires_at")),
            context_length=int(context) if isinstance(context, int) else None,
            details=ModelDetails.from_wire(data.get("details")),
        )

    @property
    def gpu_share(self) -> float:
        """Share of the model held in GPU memory (1.0 = fully offloaded)."""
        return self.size_vram_bytes / self.size_bytes if self.size_bytes else 0.0
