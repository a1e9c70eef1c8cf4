"""One set of settings for magics, widgets, batches and the Python API.

Read from ``OLLAMA_NB_*`` environment variables (and ``OLLAMA_HOST``, which
Ollama's own tools use), validated at load: a bad value fails immediately with
the variable's name instead of surfacing later as a confusing request error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .domain import ConfigurationError, GenerationOptions, KeepAlive, ModelName
from .domain.images import ImageFormat, ImageSettings, VisionSettings
from .infrastructure.host import OllamaHost, parse_ollama_host

ENV_PREFIX = "OLLAMA_NB_"

_IMAGE_FORMATS: dict[str, ImageFormat] = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


def default_data_dir() -> Path:
    """Where logs, metrics and caches live: the platform's per-user data folder."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "ollama_nb"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "ollama_nb"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "ollama_nb"


class Settings(BaseSettings):
    """Runtime settings; ``%ollama config`` shows and changes them."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, validate_assignment=True, extra="forbid", populate_by_name=True
    )

    host: str = Field(
        default="",
        validation_alias=AliasChoices("host", "OLLAMA_NB_HOST", "OLLAMA_HOST"),
        description="Ollama server, in any form OLLAMA_HOST accepts.",
    )
    default_model: str | None = Field(default=None, description="Model used when none is named.")
    default_options: dict[str, Any] = Field(
        default_factory=dict, description="Ollama options sent with every request."
    )
    keep_alive: str | None = Field(default=None, description="keep_alive sent with requests.")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    # A first request may have to load a large model: Ollama allows up to
    # OLLAMA_LOAD_TIMEOUT (5 minutes by default) for that, so we wait as long.
    read_timeout_s: float = Field(default=330.0, gt=0)
    retry_attempts: int = Field(default=3, ge=0, le=10, description="Retries after the first try.")
    retry_backoff_s: float = Field(default=0.25, ge=0)
    retry_backoff_max_s: float = Field(default=4.0, ge=0)
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=15.0, gt=0)
    parallel: int | None = Field(
        default=None,
        ge=1,
        description="Server parallel slots; unset = OLLAMA_NUM_PARALLEL if set, else 1.",
    )
    vision_parallel: int = Field(default=1, ge=1, description="Slots vision requests may take.")
    adaptive_concurrency: bool = Field(
        default=True,
        description="Learn each server's slots from queue time and 503s; off = fixed `parallel`.",
    )
    max_concurrency: int = Field(
        default=32, ge=1, le=1024, description="Most requests in flight to one server."
    )
    hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="A pool of Ollama servers (comma-separated); empty = `host` alone.",
    )
    batch_keep_alive: str = Field(
        default="30m",
        description="keep_alive a batch sends so its model stays loaded between rows.",
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    project: str | None = Field(default=None, description="Label for metrics from this kernel.")
    request_log: bool = Field(default=True, description="JSON line per request in data_dir.")
    history: bool = Field(
        default=True, description="Keep prompts and answers in the metrics store."
    )
    metrics_retention_days: float | None = Field(
        default=90.0, gt=0, description="Delete metrics older than this."
    )
    metrics_max_mb: float | None = Field(
        default=200.0, gt=0, description="Cap on the metrics store's size."
    )
    image_max_side: int = Field(
        default=1024, ge=16, le=16384, description="Longest side of images sent to vision models."
    )
    image_format: Literal["auto", "jpeg", "png", "webp"] = Field(
        default="auto", description="Format images are sent in; auto picks PNG for screenshots."
    )
    image_quality: int = Field(default=85, ge=1, le=100)
    image_max_pixels: int = Field(default=89_478_485, ge=1, description="Decompression-bomb limit.")
    image_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    image_cache_bytes: int = Field(default=1024**3, ge=0)
    image_cache_ttl_s: float = Field(default=3600.0, gt=0)
    image_fetch_remote: bool = Field(default=False, description="Fetch http(s) image URLs.")
    image_fetch_timeout_s: float = Field(default=10.0, gt=0)
    image_fetch_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    image_model_max_side: dict[str, int] = Field(
        default_factory=dict,
        description="Longest image side per model-name prefix, e.g. {'moondream': 756}.",
    )
    # A model's tool calls are requests, not commands: bounded per round, per cell, in size.
    tool_max_calls: int = Field(default=8, ge=1, le=1000, description="Tool calls run per round.")
    tool_max_rounds: int = Field(default=5, ge=1, le=100, description="Tool rounds per answer.")
    tool_max_argument_chars: int = Field(
        default=64_000, ge=1, description="Longest tool-call arguments (JSON text) accepted."
    )

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        return parse_ollama_host(value).base_url

    @field_validator("hosts", mode="before")
    @classmethod
    def _check_hosts(cls, value: object) -> list[str]:
        items = value.split(",") if isinstance(value, str) else list(value or ())  # type: ignore[call-overload]
        urls: list[str] = []
        for item in items:
            text = str(item).strip()
            if text:
                url = parse_ollama_host(text, variable="OLLAMA_NB_HOSTS").base_url
                if url not in urls:
                    urls.append(url)
        return urls

    @field_validator("batch_keep_alive")
    @classmethod
    def _check_batch_keep_alive(cls, value: str) -> str:
        KeepAlive(value)
        return value

    @field_validator("default_model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        return None if value in (None, "") else ModelName(value).value

    @field_validator("default_options")
    @classmethod
    def _check_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        GenerationOptions.from_mapping(value)
        return value

    @field_validator("keep_alive")
    @classmethod
    def _check_keep_alive(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        KeepAlive(value)
        return value

    @field_validator("image_model_max_side")
    @classmethod
    def _check_model_sides(cls, value: dict[str, int]) -> dict[str, int]:
        for prefix, side in value.items():
            ImageSettings(max_side=side)  # the same range as image_max_side
            if not prefix.strip():
                raise ValueError("model-name prefixes must not be empty")
        return value

    @property
    def vision(self) -> VisionSettings:
        """The image pipeline's settings, as the runtime builds it from these."""
        fmt: ImageFormat = (
            "auto" if self.image_format == "auto" else _IMAGE_FORMATS[self.image_format]
        )
        return VisionSettings(
            image=ImageSettings(
                max_side=self.image_max_side,
                format=fmt,
                quality=self.image_quality,
                max_pixels=self.image_max_pixels,
                max_bytes=self.image_max_bytes,
                allow_remote=self.image_fetch_remote,
                remote_timeout_s=self.image_fetch_timeout_s,
                remote_max_bytes=self.image_fetch_max_bytes,
            ),
            cache_max_bytes=self.image_cache_bytes,
            cache_ttl_s=self.image_cache_ttl_s,
            model_max_side=tuple(self.image_model_max_side.items()),
        )

    @property
    def ollama_host(self) -> OllamaHost:
        return parse_ollama_host(self.host)

    @property
    def host_urls(self) -> list[str]:
        """The servers to use: the pool when one is configured, else ``host`` alone."""
        return list(self.hosts) or [self.host]

    @property
    def known_parallel(self) -> int | None:
        """Slots someone told us about (setting or this machine's variable); None if unknown."""
        if self.parallel is not None:
            return self.parallel
        env = os.environ.get("OLLAMA_NUM_PARALLEL", "").strip()
        return int(env) if env.isdigit() and int(env) > 0 else None

    @property
    def effective_parallel(self) -> int:
        """Slots to allow: configured, else what this machine's Ollama was told, else Ollama's 1."""
        if self.parallel is not None:
            return self.parallel
        env = os.environ.get("OLLAMA_NUM_PARALLEL", "").strip()
        return int(env) if env.isdigit() and int(env) > 0 else 1

    @property
    def generation_options(self) -> GenerationOptions:
        return GenerationOptions.from_mapping(self.default_options)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and ``overrides``), or a ConfigurationError naming the culprit."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _configuration_error(exc, overrides) from None


def update_settings(settings: Settings, **changes: Any) -> Settings:
    """A copy with ``changes`` applied and validated."""
    unknown = [key for key in changes if key not in Settings.model_fields]
    if unknown:
        raise ConfigurationError(
            f"Unknown setting {unknown[0]!r}.",
            hint=f"Settings: {', '.join(Settings.model_fields)}.",
        )
    values = settings.model_dump()
    values.update(changes)
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise _configuration_error(exc, changes) from None


def _configuration_error(exc: ValidationError, given: dict[str, Any]) -> ConfigurationError:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    if field == "host" and "host" not in given:
        source = "OLLAMA_NB_HOST" if os.environ.get("OLLAMA_NB_HOST") else "OLLAMA_HOST"
    elif field in given:
        source = field
    else:
        source = f"{ENV_PREFIX}{field.upper()}"
    cause = first.get("ctx", {}).get("error")
    message = str(cause) if isinstance(cause, Exception) else first["msg"]
    return ConfigurationError(f"Setting {source}: {message}")
