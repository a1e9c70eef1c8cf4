"""Settings of one stand-in server, read from the same variables ``ollama serve`` reads."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .catalogue import DEFAULT_INSTALLED, DEFAULT_REGISTRY, ModelCard
from .durations import keep_alive_from_env
from .hostparse import parse_ollama_host

STANDIN_VERSION = "0.13.0-standin"
"""Semver-shaped so clients that parse ``/api/version`` keep working, but honest."""


def _env_int(env: Mapping[str, str], key: str, default: int, *, minimum: int) -> int:
    """Ollama logs and ignores invalid numbers; so do we."""
    raw = env.get(key, "").strip().strip("\"' ")
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value >= minimum else default


def _env_float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key, "").strip().strip("\"' ")
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value >= 0 else default


@dataclass(frozen=True, slots=True)
class StandinConfig:
    """How the stand-in behaves.

    ``port=0`` picks a free port (what tests want); ``keep_alive_s`` is seconds, with
    ``math.inf`` meaning never unload and ``0`` unload right after each request;
    ``tokens_per_second=0`` streams as fast as possible.
    """

    host: str = "127.0.0.1"
    port: int = 0
    num_parallel: int = 1
    max_queue: int = 512
    keep_alive_s: float = 300.0
    tokens_per_second: float = 0.0
    load_seconds: float = 0.0
    slow_load_seconds: float = 1.0
    pull_seconds: float = 0.0
    models: tuple[ModelCard, ...] = DEFAULT_INSTALLED
    registry: tuple[ModelCard, ...] = DEFAULT_REGISTRY
    version: str = STANDIN_VERSION

    def __post_init__(self) -> None:
        if self.num_parallel < 1:
            raise ValueError("num_parallel must be at least 1")
        if self.max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if self.tokens_per_second < 0 or self.load_seconds < 0 or self.pull_seconds < 0:
            raise ValueError("tokens_per_second, load_seconds and pull_seconds must be >= 0")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be between 0 and 65535")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> StandinConfig:
        """Build a config like ``ollama serve`` would from its environment.

        Reads ``OLLAMA_HOST``, ``OLLAMA_NUM_PARALLEL``, ``OLLAMA_MAX_QUEUE``,
        ``OLLAMA_KEEP_ALIVE`` and the stand-in's own ``OLLAMA_NB_STANDIN_TOKENS_PER_SECOND``,
        ``OLLAMA_NB_STANDIN_LOAD_SECONDS`` and ``OLLAMA_NB_STANDIN_PULL_SECONDS``.
        """
        env = os.environ if environ is None else environ
        where = parse_ollama_host(env.get("OLLAMA_HOST"))
        return cls(
            host=where.host,
            port=where.port,
            num_parallel=_env_int(env, "OLLAMA_NUM_PARALLEL", 1, minimum=1),
            max_queue=_env_int(env, "OLLAMA_MAX_QUEUE", 512, minimum=1),
            keep_alive_s=keep_alive_from_env(env.get("OLLAMA_KEEP_ALIVE", ""), 300.0),
            tokens_per_second=_env_float(env, "OLLAMA_NB_STANDIN_TOKENS_PER_SECOND", 0.0),
            load_seconds=_env_float(env, "OLLAMA_NB_STANDIN_LOAD_SECONDS", 0.0),
            pull_seconds=_env_float(env, "OLLAMA_NB_STANDIN_PULL_SECONDS", 0.0),
        )
