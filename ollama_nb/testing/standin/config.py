"""Settings of one stand-in: a server's settings plus how its scripted models behave."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

from ...serving.catalogue import ModelCard
from ...serving.config import ServerConfig, env_float
from .catalogue import DEFAULT_INSTALLED, DEFAULT_REGISTRY

STANDIN_VERSION = "0.13.0-standin"
"""Semver-shaped so clients that parse ``/api/version`` keep working, but honest."""


@dataclass(frozen=True, slots=True)
class StandinConfig(ServerConfig):
    """How the stand-in behaves.

    Everything a :class:`~ollama_nb.serving.ServerConfig` says, with the scripted models
    installed, plus pacing: ``tokens_per_second=0`` streams as fast as possible,
    ``load_seconds`` is a cold load, ``slow_load_seconds`` what the ``slow_load`` fault adds
    when it names no time, ``pull_seconds`` how long a simulated pull takes.
    """

    models: tuple[ModelCard, ...] = DEFAULT_INSTALLED
    registry: tuple[ModelCard, ...] = DEFAULT_REGISTRY
    version: str = STANDIN_VERSION
    tokens_per_second: float = 0.0
    load_seconds: float = 0.0
    slow_load_seconds: float = 1.0
    pull_seconds: float = 0.0

    def __post_init__(self) -> None:
        super(StandinConfig, self).__post_init__()
        if self.tokens_per_second < 0 or self.load_seconds < 0 or self.pull_seconds < 0:
            raise ValueError("tokens_per_second, load_seconds and pull_seconds must be >= 0")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Build a config like ``ollama serve`` would from its environment.

        Reads what :meth:`ServerConfig.from_environ` reads plus the stand-in's own
        ``OLLAMA_NB_STANDIN_TOKENS_PER_SECOND``, ``OLLAMA_NB_STANDIN_LOAD_SECONDS`` and
        ``OLLAMA_NB_STANDIN_PULL_SECONDS``.
        """
        env = os.environ if environ is None else environ
        return dataclasses.replace(
            super(StandinConfig, cls).from_environ(env),
            tokens_per_second=env_float(env, "OLLAMA_NB_STANDIN_TOKENS_PER_SECOND", 0.0),
            load_seconds=env_float(env, "OLLAMA_NB_STANDIN_LOAD_SECONDS", 0.0),
            pull_seconds=env_float(env, "OLLAMA_NB_STANDIN_PULL_SECONDS", 0.0),
        )
