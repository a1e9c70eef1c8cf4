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

from ..fitting import fit_report, report_view
from ..ollama_process.hardware import Hardware
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
