"""Settings of the server manager, kept apart from the core's ``Settings``.

Read from ``OLLAMA_NB_SERVER_*`` environment variables, e.g.
``OLLAMA_NB_SERVER_ENV='{"OLLAMA_NUM_PARALLEL": "4"}'`` or
``OLLAMA_NB_SERVER_AUTO_START=0``; ``%ollama tune --set``/``--profile`` change them
for the running kernel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..domain import ConfigurationError
from .profiles import check_env_value

ENV_PREFIX = "OLLAMA_NB_SERVER_"


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    binary: Path | None = Field(default=None, description="The ollama executable to run.")
    auto_start: bool = Field(
        default=True, description="Start a local server on first use if none answers."
    )
    profile: str | None = Field(default=None, description="Tuning profile name; unset = auto.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Server environment overrides; always win."
    )
    health_timeout_s: float = Field(default=30.0, gt=0, le=600)
    stop_at_exit: bool = Field(
        default=True, description="Stop a server we started when the last kernel using it exits."
    )
    profiles_dir: Path | None = Field(default=None, description="Extra folder of *.yaml profiles.")
    warm_model: str | None = Field(default=None, description="Model to preload after a start.")

    @field_validator("env", mode="before")
    @classmethod
    def _check_env(cls, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise ValueError("expected a mapping of variable name to value")
        return {str(k): check_env_value(str(k), v) for k, v in value.items()}

    @field_validator("binary")
    @classmethod
    def _check_binary(cls, value: Path | None) -> Path | None:
        return None if value in (None, Path("")) else value


def load_server_settings(**overrides: Any) -> ServerSettings:
    """Settings from the environment and ``overrides``, or a one-line ConfigurationError."""
    try:
        return ServerSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        name = field if field in overrides else f"{ENV_PREFIX}{field.upper()}"
        cause = first.get("ctx", {}).get("error")
        message = str(cause) if isinstance(cause, Exception) else first["msg"]
        raise ConfigurationError(f"Server setting {name}: {message}") from None
