"""Settings of one server, read from the same variables ``ollama serve`` reads."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

from ..infrastructure.host import parse_ollama_host
from .catalogue import ModelCard
from .durations import keep_alive_from_env
from .origins import default_origins, origins_from_env

MAX_BODY_BYTES = 256 * 1024**2
"""Ollama reads any body; ours stops at 256 MiB (several large base64 images fit)."""
MAX_BODY_ENV = "OLLAMA_NB_MAX_BODY_BYTES"
SERVING_VERSION = "0.13.0-ollama_nb"
"""Semver-shaped so clients that parse ``/api/version`` keep working, but honest."""


def env_int(env: Mapping[str, str], key: str, default: int, *, minimum: int) -> int:
    """Ollama logs and ignores invalid numbers; so do we."""
    raw = env.get(key, "").strip().strip("\"' ")
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value >= minimum else default


def env_float(env: Mapping[str, str], key: str, default: float) -> float:
    """A non-negative number, or ``default`` when unset or invalid."""
    raw = env.get(key, "").strip().strip("\"' ")
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value >= 0 else default


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How a server listens, queues and keeps models.

    ``port=0`` picks a free port; ``keep_alive_s`` is seconds, with ``math.inf`` meaning
    never unload and ``0`` unload right after each request. ``models`` are installed at
    start; ``registry`` is what ``/api/pull`` can fetch besides them. ``origins`` are the
    web origins allowed to call (``OLLAMA_ORIGINS`` plus Ollama's defaults);
    ``max_body_bytes`` bounds a request body, checked while it is read.
    """

    host: str = "127.0.0.1"
    port: int = 0
    num_parallel: int = 1
    max_queue: int = 512
    keep_alive_s: float = 300.0
    models: tuple[ModelCard, ...] = ()
    registry: tuple[ModelCard, ...] = ()
    version: str = SERVING_VERSION
    origins: tuple[str, ...] = default_origins()
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if self.num_parallel < 1:
            raise ValueError("num_parallel must be at least 1")
        if self.max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be between 0 and 65535")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Build a config like ``ollama serve`` would from its environment.

        Reads ``OLLAMA_HOST``, ``OLLAMA_NUM_PARALLEL``, ``OLLAMA_MAX_QUEUE``,
        ``OLLAMA_KEEP_ALIVE``, ``OLLAMA_ORIGINS`` and our ``OLLAMA_NB_MAX_BODY_BYTES``; a broken ``OLLAMA_HOST`` raises ``ConfigurationError``.
        """
        env = os.environ if environ is None else environ
        where = parse_ollama_host(env.get("OLLAMA_HOST"))
        return cls(
            host=where.hostname,
            port=where.port,
            num_parallel=env_int(env, "OLLAMA_NUM_PARALLEL", 1, minimum=1),
            max_queue=env_int(env, "OLLAMA_MAX_QUEUE", 512, minimum=1),
            keep_alive_s=keep_alive_from_env(env.get("OLLAMA_KEEP_ALIVE", ""), 300.0),
            origins=origins_from_env(env),
            max_body_bytes=env_int(env, MAX_BODY_ENV, MAX_BODY_BYTES, minimum=1),
        )
