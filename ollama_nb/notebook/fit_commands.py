# mypy: disable-error-code="no-untyped-call,untyped-decorator"
"""``%ollama fit MODEL``: will it fit on this machine, before pulling it?

Prints the arithmetic (weights + KV cache + overhead against the budget), the
verdict and the largest context for 1, 2, 4 and 8 slots. ``--machine
apple:16`` asks about another machine (``apple``, ``nvidia`` or ``cpu`` and its
memory in GB), e.g. to choose a model for a colleague's laptop.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError

from ..application import use_cases
from ..domain import ModelName
from ..ollama_process.fit import FitReport, fit, machine_budget
from ..ollama_process.hardware import Hardware
from ..presentation.display import Sections, Table
from ..runtime import Runtime
from .commands import subcommand

_MACHINE_KINDS = ("apple", "nvidia", "cpu")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit the kernel
        raise UsageError(f"%ollama fit: {message}. Usage: {self.format_usage().strip()}")


def _parser() -> _Parser:
    parser = _Parser(prog="%ollama fit", add_help=False)
    parser.add_argument("model")
    parser.add_argument("--ctx", type=int, help="context length (default: the server's)")
    parser.add_argument("--parallel", type=int, help="parallel slots (default: the server's)")
    parser.add_argument("--machine", help="another machine: apple:16, nvidia:24, cpu:32 (GB)")
    return parser


def parse_machine(text: str) -> Hardware:
    kind, _, memory = text.partition(":")
    if kind not in _MACHINE_KINDS or not memory.isdigit() or not 1 <= int(memory) <= 4096:
        raise UsageError(
            f"--machine {text!r}: expected apple:GB, nvidia:GB or cpu:GB, e.g. apple:16."
        )
    gb = int(memory)
    if kind == "apple":
        return Hardware.apple(memory_gb=gb)
    if kind == "nvidia":
        return Hardware.linux(memory_gb=max(gb * 2, 16), gpu_memory_gb=gb)
    return Hardware.linux(memory_gb=gb)


def fit_report(
    runtime: Runtime,
    model: str,
    *,
    context: int | None = None,
    parallel: int | None = None,
    hardware: Hardware | None = None,
) -> FitReport:
    """The report ``%ollama fit`` and the model panel show."""
    for flag, value in (("ctx", context), ("parallel", parallel)):
        if value is not None and value < 1:
            raise UsageError(f"--{flag} must be at least 1, got {value}.")
    name = ModelName(model)
    registry = runtime.registry
    shape = runtime.run(lambda ports: use_cases.model_shape(ports, name, registry))
    server = runtime.server
    profiles = server.profiles
    # The profiles' table stands in when the model's header gave no KV figure.
    listed = [s.kv_bytes_per_token for n, s in profiles.models.items() if name.matches(n)]
    known_kv = {shape.name: listed[0]} if listed else None
    machine = machine_budget(hardware or server.hardware, profiles)
    return fit(shape, machine, context=context, parallel=parallel, known_kv=known_kv)


def report_view(report: FitReport) -> Sections:
    m = report.machine
    profile = f", profile {m.profile}" if m.profile else ""
    arithmetic = Table(
        ("", ""),
        tuple(report.rows()),
        title=f"Will {report.shape.name} fit? {m.description}{profile}",
        footer=f"Model figures from {report.shape.source}.",
    )
    largest = Table(
        ("slots", "largest context that fits"),
        tuple((str(p), f"{ctx:,}" if ctx else "none") for p, ctx in report.largest()),
        title="Largest ctx x slots",
        footer=(
            f"Capped at the model's trained context ({report.shape.trained_context:,})."
            if report.shape.trained_context
            else ""
        ),
    )
    return Sections((arithmetic, largest))


@subcommand("fit", "will a model fit here, before pulling: fit MODEL [--ctx N] [--parallel P]")
def fit_command(line: str, shell: Any, runtime: Runtime) -> object:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%ollama fit: {exc}.") from None
    args = _parser().parse_args(words)
    hardware = parse_machine(args.machine) if args.machine else None
    report = fit_report(
        runtime, args.model, context=args.ctx, parallel=args.parallel, hardware=hardware
    )
    return report_view(report)
