"""The models a fresh stand-in has installed and the ones it can "pull".

They are scripted (see :mod:`.scripted`): real names, sizes, capabilities and templates
from Ollama's library, answers made up deterministically.
"""

from __future__ import annotations

from ...serving.catalogue import COMPLETION, EMBEDDING, THINKING, TOOLS, VISION, ModelCard

SCRIPTED = "scripted"
"""The engine key of :class:`~.scripted.ScriptedEngine` in every stand-in."""

_LLAMA_TEMPLATE = (
    "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>"
    "{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}"
    "<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}"
)
_QWEN_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n{{ if .Think }}<think>\n{{ end }}"
)
_GEMMA_TEMPLATE = (
    "{{- range .Messages }}<start_of_turn>{{ .Role }}\n{{ .Content }}<end_of_turn>\n{{ end }}"
    "<start_of_turn>model\n"
)

DEFAULT_INSTALLED: tuple[ModelCard, ...] = (
    ModelCard(
        name="llama3.2:latest",
        family="llama",
        parameter_size="3.2B",
        parameter_count=3_212_749_888,
        quantization_level="Q4_K_M",
        capabilities=frozenset({COMPLETION, TOOLS}),
        context_length=131_072,
        embedding_length=3072,
        head_count=24,
        head_count_kv=8,
        engine=SCRIPTED,
        size_bytes=2_019_393_189,
        template=_LLAMA_TEMPLATE,
        parameters='stop                           "<|start_header_id|>"\n'
        'stop                           "<|end_header_id|>"\n'
        'stop                           "<|eot_id|>"',
    ),
    ModelCard(
        name="qwen3:0.6b",
        family="qwen3",
        parameter_size="751.63M",
        parameter_count=751_632_384,
        quantization_level="Q4_K_M",
        capabilities=frozenset({COMPLETION, TOOLS, THINKING}),
        context_length=40_960,
        embedding_length=1024,
        engine=SCRIPTED,
        size_bytes=522_653_767,
        template=_QWEN_TEMPLATE,
        parameters="repeat_penalty                 1\ntemperature                    0.6\n"
        "top_k                          20\ntop_p                          0.95",
    ),
    ModelCard(
        name="gemma3:4b",
        family="gemma3",
        parameter_size="4.3B",
        parameter_count=4_299_915_632,
        quantization_level="Q4_K_M",
        capabilities=frozenset({COMPLETION, VISION}),
        context_length=131_072,
        embedding_length=2560,
        engine=SCRIPTED,
        size_bytes=3_338_801_804,
        template=_GEMMA_TEMPLATE,
        parameters='stop                           "<end_of_turn>"\ntemperature                    1\n'
        "top_k                          64\ntop_p                          0.95",
    ),
    ModelCard(
        name="nomic-embed-text:latest",
        family="nomic-bert",
        parameter_size="137M",
        parameter_count=136_727_040,
        quantization_level="F16",
        capabilities=frozenset({EMBEDDING}),
        context_length=2048,
        embedding_length=768,
        engine=SCRIPTED,
        size_bytes=274_302_450,
        template="",
        parameters="num_ctx                        8192",
    ),
)

DEFAULT_REGISTRY: tuple[ModelCard, ...] = (
    *DEFAULT_INSTALLED,
    ModelCard(
        name="moondream:latest",
        family="phi2",
        families=("phi2", "clip"),
        parameter_size="1B",
        parameter_count=1_420_000_000,
        quantization_level="Q4_0",
        capabilities=frozenset({COMPLETION, VISION}),
        context_length=2048,
        embedding_length=2048,
        engine=SCRIPTED,
        size_bytes=1_738_451_197,
    ),
    ModelCard(
        name="phi4-mini:latest",
        family="phi3",
        parameter_size="3.8B",
        parameter_count=3_836_021_856,
        quantization_level="Q4_K_M",
        capabilities=frozenset({COMPLETION, TOOLS}),
        context_length=131_072,
        embedding_length=3072,
        engine=SCRIPTED,
        size_bytes=2_491_876_774,
    ),
    ModelCard(
        name="all-minilm:latest",
        family="bert",
        parameter_size="23M",
        parameter_count=22_565_760,
        quantization_level="F16",
        capabilities=frozenset({EMBEDDING}),
        context_length=512,
        embedding_length=384,
        engine=SCRIPTED,
        size_bytes=45_960_996,
        template="",
    ),
)
