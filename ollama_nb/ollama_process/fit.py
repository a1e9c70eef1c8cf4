"""Will this model fit, before it is pulled: the profile arithmetic for one model.

What a loaded model costs, as Ollama's own estimate counts it:

    weights             the model's layers as stored (what the download weighs)
  + KV cache            context x parallel slots x bytes per token
                        (bytes per token = layers x KV heads x (key + value dim) x 2,
                        halved by q8_0 and quartered by q4_0 with flash attention on)
  + overhead            compute buffers and the GPU runtime: an estimate
                        (``OVERHEAD_BYTES`` plus ``OVERHEAD_SHARE`` of the weights)

against what this machine lets models use (``profiles.py``): memory x the
GPU/model share (Metal's working set on Apple Silicon) - headroom for the
notebook. The shape (weights, layers, heads) comes from ``/api/show`` for an
installed model and from the registry's manifest and GGUF header otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..domain.shape import ModelShape
from .hardware import GIB, Hardware
from .profiles import GB, ProfileSet, choose_profile, model_memory, ollama_default_context

#: Compute buffers and runtime that every loaded model needs on top of weights and KV.
OVERHEAD_BYTES = 512 * 1024 * 1024
OVERHEAD_SHARE = 0.05
_KV_FACTOR = {"f16": 1.0, "q8_0": 0.5, "q4_0": 0.25}
#: Contexts smaller than this are not worth loading a model for.
MIN_USEFUL_CONTEXT = 2048
_SLOT_CHOICES = (1, 2, 4, 8)


@dataclass(frozen=True, slots=True)
class MachineBudget:
    """What this machine lets models use, and the server's context, slots and KV type."""

    description: str
    memory_bytes: int
    memory_kind: str
    share: float
    headroom_bytes: int
    context_length: int
    parallel: int
    kv_cache_type: str  # as the server will use it (q8_0/q4_0 only with flash attention)
    profile: str | None

    @property
    def budget_bytes(self) -> int:
        return int(self.memory_bytes * self.share) - self.headroom_bytes


def machine_budget(hardware: Hardware, profiles: ProfileSet) -> MachineBudget:
    """The budget of the profile chosen for ``hardware`` (or its tier when none fits)."""
    memory, kind = model_memory(hardware)
    choice = choose_profile(hardware, profiles)
    profile = choice.profile or next(
        (
            p
            for p in profiles.profiles
            if p.match.platform == hardware.platform and p.match.contains(memory / GIB)
        ),
        None,
    )
    if profile is None:  # no profile for this platform at all: Ollama's own defaults
        return MachineBudget(
            hardware.describe(), memory, kind, 0.9, 2 * GIB,
            ollama_default_context(hardware), 1, "f16", None,
        )  # fmt: skip
    server = profile.server
    kv_type = server.kv_cache_type if server.flash_attention else "f16"
    return MachineBudget(
        description=hardware.describe(),
        memory_bytes=memory,
        memory_kind=kind,
        share=profile.memory.gpu_share,
        headroom_bytes=int(profile.memory.headroom_gb * GIB),
        context_length=server.context_length,
        parallel=server.num_parallel,
        kv_cache_type=kv_type,
        profile=profile.name,
    )


@dataclass(frozen=True, slots=True)
class FitReport:
    """One model on one machine at one context and slot count, with the verdict."""

    shape: ModelShape
    machine: MachineBudget
    context: int
    parallel: int
    kv_per_token: int  # f16 bytes per token and slot actually used for the arithmetic
    kv_estimated: bool  # True when the shape had no KV figure and a typical one was used

    @property
    def kv_factor(self) -> float:
        return _KV_FACTOR.get(self.machine.kv_cache_type, 1.0)

    @property
    def kv_bytes(self) -> int:
        return int(self.context * self.parallel * self.kv_per_token * self.kv_factor)

    @property
    def overhead_bytes(self) -> int:
        return OVERHEAD_BYTES + int(self.shape.weights_bytes * OVERHEAD_SHARE)

    @property
    def required_bytes(self) -> int:
        return self.shape.weights_bytes + self.kv_bytes + self.overhead_bytes

    @property
    def fits(self) -> bool:
        return self.required_bytes <= self.machine.budget_bytes

    def largest_context(self, parallel: int) -> int:
        """The largest context (a multiple of 1024, at most the trained one) for ``parallel`` slots."""
        spare = self.machine.budget_bytes - self.shape.weights_bytes - self.overhead_bytes
        per_token = self.kv_per_token * self.kv_factor * parallel
        if spare <= 0 or per_token <= 0:
            return 0
        tokens = int(spare // per_token) // 1024 * 1024
        limit = self.shape.trained_context
        return min(tokens, limit) if limit else tokens

    def largest(self) -> list[tuple[int, int]]:
        """(slots, largest context) for the usual slot counts and the one asked about."""
        counts = sorted({*_SLOT_CHOICES, self.parallel})
        return [(p, self.largest_context(p)) for p in counts]

    def verdict(self) -> str:
        spare = self.machine.budget_bytes - self.required_bytes
        if self.fits:
            return (
                f"fits: {_gib(self.required_bytes)} of {_gib(self.machine.budget_bytes)}, "
                f"{_gib(spare)} to spare"
            )
        if self.shape.weights_bytes + self.overhead_bytes > self.machine.budget_bytes:
            return (
                f"DOES NOT FIT: the weights alone need "
                f"{_gib(self.shape.weights_bytes + self.overhead_bytes)} of "
                f"{_gib(self.machine.budget_bytes)}; pick a smaller model or quantisation"
            )
        best = self.largest_context(self.parallel)
        way = (
            f"lower the context to {best} (or the slots)"
            if best >= MIN_USEFUL_CONTEXT
            else "use fewer slots or q8_0 KV cache"
        )
        return f"DOES NOT FIT: {_gib(-spare)} over; {way}"

    def rows(self) -> list[tuple[str, str]]:
        """The arithmetic, line by line, as ``%ollama fit`` prints it."""
        m = self.machine
        usable = int(m.memory_bytes * m.share)
        kv_note = " (typical figure: the model's header did not say)" if self.kv_estimated else ""
        return [
            (m.memory_kind, _gib(m.memory_bytes)),
            (f"x GPU/model share {m.share:.0%}", _gib(usable)),
            ("- headroom for the notebook and OS", f"-{_gib(m.headroom_bytes)}"),
            ("= budget", _gib(m.budget_bytes)),
            (f"{self.shape.name} weights", _gib(self.shape.weights_bytes)),
            (
                f"+ KV cache: {self.context} ctx x {self.parallel} slots x "
                f"{self.kv_per_token:,} B/token{kv_note} x {self.kv_factor:g} ({m.kv_cache_type})",
                _gib(self.kv_bytes),
            ),
            (
                f"+ overhead: {OVERHEAD_BYTES // 2**20} MiB + {OVERHEAD_SHARE:.0%} of weights",
                _gib(self.overhead_bytes),
            ),
            ("= required", _gib(self.required_bytes)),
            ("verdict", self.verdict()),
        ]


#: f16 KV bytes per token and slot of a typical 3-8B model, when the shape has none.
TYPICAL_KV_BYTES_PER_TOKEN = 131_072


def fit(
    shape: ModelShape,
    machine: MachineBudget,
    *,
    context: int | None = None,
    parallel: int | None = None,
    known_kv: Mapping[str, int] | None = None,
) -> FitReport:
    """The report for ``shape`` on ``machine``; ``context``/``parallel`` default to the server's.

    ``known_kv`` (model name -> bytes per token, from ``profiles/models.yaml``) stands in
    when the model's header gave no figure, before the typical one does.
    """
    per_token = shape.kv_bytes_per_token
    estimated = per_token is None
    if per_token is None:
        per_token = (known_kv or {}).get(shape.name, TYPICAL_KV_BYTES_PER_TOKEN)
    return FitReport(
        shape=shape,
        machine=machine,
        context=context or machine.context_length,
        parallel=parallel or machine.parallel,
        kv_per_token=per_token,
        kv_estimated=estimated,
    )


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def decimal_gb(n: int) -> str:
    """Sizes as the library lists them (decimal GB)."""
    return f"{n / GB:.1f} GB"
