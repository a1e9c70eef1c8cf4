"""Tuning profiles: which Ollama settings suit which machine, and does it all fit?

A profile (``profiles/*.yaml``) names a hardware tier, the server settings for it
and the text and vision models it recommends; ``profiles/models.yaml`` holds what
those models cost in memory. Loading validates every file and reports mistakes
as ``file: field: problem``.

The memory budget is the centre of it. A loaded model costs its weights plus a KV
cache of ``context length x parallel slots x bytes per token`` (q8_0 halves that,
q4_0 quarters it, but only with flash attention on, as Ollama ignores the cache
type otherwise). On a Mac the GPU may use only Metal's working-set share of
unified memory, and the notebook itself needs some headroom, so::

    budget   = memory x gpu_share - headroom
    required = sum over resident models of (weights + KV cache)

With ``OLLAMA_MAX_LOADED_MODELS`` of 2 or more the text and vision models are
resident together; with 1 only the larger of them is. A profile is chosen only if
``required <= budget``; otherwise the next smaller profile for the platform is
tried, and when none fits Ollama's own defaults are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..domain import ConfigurationError, InvalidInputError, KeepAlive
from .hardware import GIB, Hardware, Platform

M = TypeVar("M", bound=BaseModel)

GB = 1000**3  # model sizes are listed in decimal GB

KvCacheType = Literal["f16", "q8_0", "q4_0"]
Source = Literal["override", "environment", "profile", "ollama default"]

_KV_FACTOR: dict[str, float] = {"f16": 1.0, "q8_0": 0.5, "q4_0": 0.25}
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class ProfileError(ConfigurationError):
    """A profile file is malformed; the message names the file and the field."""


# --- the YAML schema ---------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    platform: Platform
    min_memory_gb: float = Field(default=0, ge=0)
    max_memory_gb: float | None = Field(default=None, gt=0)

    def contains(self, memory_gb: float) -> bool:
        upper = self.max_memory_gb
        return self.min_memory_gb <= memory_gb and (upper is None or memory_gb < upper)


class MemoryRules(_Strict):
    gpu_share: float = Field(gt=0, le=1, description="Share of memory the GPU may use.")
    headroom_gb: float = Field(ge=0, description="Kept free for the notebook and the OS.")


def _duration(value: str) -> str:
    try:
        KeepAlive(value)
    except InvalidInputError as exc:
        raise ValueError(exc.message) from None
    return value


class ServerValues(_Strict):
    num_parallel: int = Field(ge=1, le=64)
    max_loaded_models: int = Field(ge=1, le=16)
    context_length: int = Field(ge=512)
    flash_attention: bool
    kv_cache_type: KvCacheType
    keep_alive: str
    max_queue: int = Field(ge=1)
    load_timeout: str

    @field_validator("keep_alive", "load_timeout", mode="before")
    @classmethod
    def _check_duration(cls, value: object) -> str:
        return _duration(str(value))

    def as_env(self) -> dict[str, str]:
        return {
            "OLLAMA_NUM_PARALLEL": str(self.num_parallel),
            "OLLAMA_MAX_LOADED_MODELS": str(self.max_loaded_models),
            "OLLAMA_CONTEXT_LENGTH": str(self.context_length),
            "OLLAMA_FLASH_ATTENTION": "1" if self.flash_attention else "0",
            "OLLAMA_KV_CACHE_TYPE": self.kv_cache_type,
            "OLLAMA_KEEP_ALIVE": self.keep_alive,
            "OLLAMA_MAX_QUEUE": str(self.max_queue),
            "OLLAMA_LOAD_TIMEOUT": self.load_timeout,
        }


class RecommendedModels(_Strict):
    text: str
    vision: str


class Profile(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str
    match: Match
    memory: MemoryRules
    server: ServerValues
    models: RecommendedModels
    source: str = Field(default="", exclude=True)


class ModelSpec(_Strict):
    weights_gb: float = Field(gt=0)
    kv_bytes_per_token: int = Field(gt=0)
    vision: bool = False


@dataclass(frozen=True, slots=True)
class ProfileSet:
    profiles: tuple[Profile, ...]
    models: Mapping[str, ModelSpec]

    def named(self, name: str) -> Profile:
        for profile in self.profiles:
            if profile.name == name:
                return profile
        raise ConfigurationError(
            f"No tuning profile named {name!r}.",
            hint=f"Profiles: {', '.join(p.name for p in self.profiles)}.",
        )


# --- loading -----------------------------------------------------------------------


def default_profile_dirs() -> list[Path]:
    """Where the shipped profiles are: inside the wheel, or at the root of a checkout."""
    package = Path(__file__).resolve().parents[1]
    return [d for d in (package / "profiles", package.parent / "profiles") if d.is_dir()][:1]


def load_profiles(directories: Iterable[Path] | None = None) -> ProfileSet:
    """Every ``*.yaml`` profile in ``directories`` (later ones replace same-named profiles)."""
    dirs = list(directories) if directories is not None else default_profile_dirs()
    if not dirs:
        raise ProfileError("No tuning profiles found: the 'profiles' folder is missing.")
    profiles: dict[str, Profile] = {}
    models: dict[str, ModelSpec] = {}
    for directory in dirs:
        if not directory.is_dir():
            raise ProfileError(f"Profile folder {directory} does not exist.")
        catalogue = directory / "models.yaml"
        if catalogue.exists():
            raw = _read_yaml(catalogue)
            if not isinstance(raw, dict):
                raise ProfileError(
                    f"{_show(catalogue)}: expected a mapping of model name to sizes."
                )
            for name, spec in raw.items():
                models[str(name)] = _validate(ModelSpec, spec, catalogue, prefix=str(name))
        for path in sorted(directory.glob("*.yaml")):
            if path.name == "models.yaml":
                continue
            data = _read_yaml(path)
            if not isinstance(data, dict):
                raise ProfileError(f"{_show(path)}: expected a mapping with name, match, server…")
            profile = _validate(Profile, {**data, "source": str(path)}, path)
            profiles[profile.name] = profile
    for profile in profiles.values():
        for role, model in (("text", profile.models.text), ("vision", profile.models.vision)):
            if model not in models:
                raise ProfileError(
                    f"{_show(Path(profile.source))}: models.{role}: {model!r} is not in models.yaml."
                )
    return ProfileSet(tuple(profiles.values()), models)


def _show(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ProfileError(f"{_show(path)}: not valid YAML{where}: {problem}.") from None
    except OSError as exc:
        raise ProfileError(f"{_show(path)}: cannot read ({exc.strerror}).") from None


def _validate(model: type[M], data: Any, path: Path, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
        raise ProfileError(f"{_show(path)}: {field or '(top level)'}: {first['msg']}.") from None


# --- environment values with their source ------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvValue:
    name: str
    value: str | None
    source: Source


#: The settings a profile controls, in display order.
TUNED_VARIABLES = (
    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_MAX_LOADED_MODELS",
    "OLLAMA_CONTEXT_LENGTH",
    "OLLAMA_FLASH_ATTENTION",
    "OLLAMA_KV_CACHE_TYPE",
    "OLLAMA_KEEP_ALIVE",
    "OLLAMA_MAX_QUEUE",
    "OLLAMA_LOAD_TIMEOUT",
)

#: Named in older designs and blog posts, but not read by Ollama (see profiles/README.md).
NOT_READ_BY_OLLAMA = {
    "OLLAMA_METAL": "Metal is used automatically on Apple Silicon",
    "OLLAMA_NUM_GPU": "GPU layers are the per-request option num_gpu, not a server variable",
    "OLLAMA_MAX_RAM": "Ollama sizes models from the memory it detects",
}


def check_env_value(name: str, value: object, *, origin: str = "override") -> str:
    """``value`` as the string Ollama would read, or a ConfigurationError naming ``name``."""
    if name in NOT_READ_BY_OLLAMA:
        raise ConfigurationError(
            f"{origin} {name}: Ollama does not read this variable ({NOT_READ_BY_OLLAMA[name]})."
        )
    if name == "OLLAMA_HOST":
        raise ConfigurationError(
            f"{origin} {name}: the server address comes from the host setting.",
            hint="Use `%ollama config host=127.0.0.1:11435` or OLLAMA_NB_HOST.",
        )
    if not _ENV_NAME.match(name):
        raise ConfigurationError(f"{origin} {name!r} is not an environment variable name.")
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, int | float | str):
        text = str(value).strip()
    else:
        raise ConfigurationError(
            f"{origin} {name}: expected text or a number, got {type(value).__name__}."
        )
    problem = _problem(name, text)
    if problem:
        raise ConfigurationError(f"{origin} {name}={text!r}: {problem}.")
    return text


def _problem(name: str, text: str) -> str | None:
    minimum = {
        "OLLAMA_NUM_PARALLEL": 1,
        "OLLAMA_MAX_LOADED_MODELS": 0,
        "OLLAMA_CONTEXT_LENGTH": 1,
        "OLLAMA_MAX_QUEUE": 1,
    }
    if name in minimum:
        if not text.isdigit() or int(text) < minimum[name]:
            return f"must be a whole number of at least {minimum[name]}"
    elif name == "OLLAMA_FLASH_ATTENTION":
        if text not in _GO_TRUE | _GO_FALSE:
            return "must be 1 or 0 (true/false)"
    elif name == "OLLAMA_KV_CACHE_TYPE":
        if text not in _KV_FACTOR:
            return f"must be one of {', '.join(_KV_FACTOR)}"
    elif name in ("OLLAMA_KEEP_ALIVE", "OLLAMA_LOAD_TIMEOUT"):
        try:
            KeepAlive(text)
        except InvalidInputError:
            return "must be seconds or a duration like 5m or 1h30m"
    return None


def resolve_env(
    profile: Profile | None, overrides: Mapping[str, object], environ: Mapping[str, str]
) -> dict[str, EnvValue]:
    """Each variable the server will get, and why: override > environment > profile."""
    checked = {name: check_env_value(name, value) for name, value in overrides.items()}
    from_profile = profile.server.as_env() if profile is not None else {}
    names = list(TUNED_VARIABLES) + [n for n in checked if n not in TUNED_VARIABLES]
    resolved: dict[str, EnvValue] = {}
    for name in names:
        if name in checked:
            resolved[name] = EnvValue(name, checked[name], "override")
        elif environ.get(name, "").strip():
            value = check_env_value(name, environ[name], origin="environment variable")
            resolved[name] = EnvValue(name, value, "environment")
        elif name in from_profile:
            resolved[name] = EnvValue(name, from_profile[name], "profile")
        else:
            resolved[name] = EnvValue(name, None, "ollama default")
    return resolved


def env_to_set(resolved: Mapping[str, EnvValue]) -> dict[str, str]:
    return {name: v.value for name, v in resolved.items() if v.value is not None}


# --- the memory budget ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelLoad:
    name: str
    weights_bytes: int
    kv_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes


@dataclass(frozen=True, slots=True)
class Budget:
    """The arithmetic behind a choice, kept so ``%ollama tune`` can show it."""

    memory_bytes: int
    memory_kind: str  # "unified memory", "GPU memory", "RAM"
    share: float
    headroom_bytes: int
    context_length: int
    parallel: int
    kv_cache_type: str
    kv_factor: float
    resident: tuple[ModelLoad, ...]

    @property
    def budget_bytes(self) -> int:
        return int(self.memory_bytes * self.share) - self.headroom_bytes

    @property
    def required_bytes(self) -> int:
        return sum(m.total_bytes for m in self.resident)

    @property
    def fits(self) -> bool:
        return self.required_bytes <= self.budget_bytes

    def rows(self) -> list[tuple[str, str]]:
        """The table ``%ollama tune`` prints: (what, GB)."""
        usable = int(self.memory_bytes * self.share)
        rows = [
            (f"{self.memory_kind}", _gb(self.memory_bytes)),
            (f"x GPU/model share {self.share:.0%}", _gb(usable)),
            ("- headroom for the notebook", f"-{_gb(self.headroom_bytes)}"),
            ("= budget", _gb(self.budget_bytes)),
        ]
        kv = f"{self.context_length} ctx x {self.parallel} slots, {self.kv_cache_type}"
        for model in self.resident:
            rows.append((f"{model.name} weights", _gb(model.weights_bytes)))
            rows.append((f"{model.name} KV cache ({kv})", _gb(model.kv_bytes)))
        verdict = "fits" if self.fits else "DOES NOT FIT"
        rows.append((f"= required ({verdict})", _gb(self.required_bytes)))
        return rows


def _gb(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def model_memory(hardware: Hardware) -> tuple[int, str]:
    """The memory models live in on this machine, and what to call it."""
    if hardware.platform == "apple-silicon":
        return hardware.memory_bytes, "unified memory"
    if hardware.platform == "nvidia" and hardware.gpu_memory_bytes:
        return hardware.gpu_memory_bytes, "GPU memory"
    return hardware.memory_bytes, "RAM"


def ollama_default_context(hardware: Hardware) -> int:
    """Ollama's own default context length, which grows with the machine's memory."""
    memory, _ = model_memory(hardware)
    if memory < 24 * GIB:
        return 4096
    if memory <= 48 * GIB:
        return 32768
    return 262144


def compute_budget(
    hardware: Hardware,
    profile: Profile,
    models: Mapping[str, ModelSpec],
    env: Mapping[str, str] | None = None,
) -> Budget:
    """The budget for ``profile`` on ``hardware`` with the effective ``env`` values."""
    values = profile.server.as_env() if env is None else dict(env)
    parallel = int(values.get("OLLAMA_NUM_PARALLEL") or 1)
    context = int(values.get("OLLAMA_CONTEXT_LENGTH") or ollama_default_context(hardware))
    kv_type = values.get("OLLAMA_KV_CACHE_TYPE") or "f16"
    flash = values.get("OLLAMA_FLASH_ATTENTION", "0") in _GO_TRUE
    factor = _KV_FACTOR[kv_type] if flash else 1.0
    loaded = int(values.get("OLLAMA_MAX_LOADED_MODELS") or 0) or 3  # Ollama's 0 means "auto"
    loads = []
    for name in dict.fromkeys((profile.models.text, profile.models.vision)):
        spec = models[name]
        kv = int(context * parallel * spec.kv_bytes_per_token * factor)
        loads.append(ModelLoad(name, int(spec.weights_gb * GB), kv))
    if loaded < 2:
        loads = [max(loads, key=lambda m: m.total_bytes)]
    memory, kind = model_memory(hardware)
    return Budget(
        memory_bytes=memory,
        memory_kind=kind,
        share=profile.memory.gpu_share,
        headroom_bytes=int(profile.memory.headroom_gb * GIB),
        context_length=context,
        parallel=parallel,
        kv_cache_type=kv_type
        if flash or kv_type == "f16"
        else f"{kv_type} ignored: no flash attention",
        kv_factor=factor,
        resident=tuple(loads),
    )


# --- choosing --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    hardware: Hardware
    profile: Profile | None
    budget: Budget | None
    reason: str


def choose_profile(hardware: Hardware, profiles: ProfileSet, *, name: str | None = None) -> Choice:
    """The profile for ``hardware``: the named one, else the largest matching tier that fits."""
    if name:
        profile = profiles.named(name)
        budget = compute_budget(hardware, profile, profiles.models)
        return Choice(hardware, profile, budget, f"profile {name!r} chosen by you")
    memory, kind = model_memory(hardware)
    memory_gb = memory / GIB
    candidates = sorted(
        (p for p in profiles.profiles if p.match.platform == hardware.platform),
        key=lambda p: p.match.min_memory_gb,
        reverse=True,
    )
    eligible = [p for p in candidates if p.match.min_memory_gb <= memory_gb]
    for position, profile in enumerate(eligible):
        budget = compute_budget(hardware, profile, profiles.models)
        if budget.fits:
            if position == 0 and profile.match.contains(memory_gb):
                why = f"matches {memory_gb:.0f} GB of {kind}"
            else:
                why = f"largest profile whose models fit in {memory_gb:.0f} GB of {kind}"
            return Choice(hardware, profile, budget, why)
    return Choice(
        hardware,
        None,
        None,
        f"no profile's models fit in {memory_gb:.0f} GB of {kind}; Ollama's own defaults apply",
    )
