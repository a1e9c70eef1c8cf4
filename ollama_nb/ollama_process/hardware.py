"""What machine are we on? Enough to pick a tuning profile, nothing more.

On a Mac the answers come from ``sysctl`` (chip name, unified memory, performance
and efficiency core counts); elsewhere from ``psutil`` plus whether ``nvidia-smi``
is on the PATH (and, if so, how much memory the GPUs report). Every probe is a
parameter of :func:`detect_hardware`, so tests can pretend to be any machine
without running on it.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psutil

GIB = 1024**3

Platform = Literal["apple-silicon", "nvidia", "cpu"]
Runner = Callable[..., "subprocess.CompletedProcess[str]"]

_SYSCTL_KEYS = (
    "machdep.cpu.brand_string",
    "hw.memsize",
    "hw.ncpu",
    "hw.perflevel0.physicalcpu",
    "hw.perflevel1.physicalcpu",
)
_CHIP_RE = re.compile(r"Apple (M\d+)(?:\s+(Pro|Max|Ultra))?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Hardware:
    """The facts a profile is chosen from."""

    system: str  # "darwin", "linux", "windows", …
    memory_bytes: int
    cpu_count: int
    chip: str | None = None  # "Apple M3 Max" as sysctl reports it
    chip_family: str | None = None  # "M3"
    chip_variant: str | None = None  # "Pro", "Max", "Ultra" or None for the base chip
    performance_cores: int | None = None
    efficiency_cores: int | None = None
    nvidia_gpu: bool = False
    gpu_memory_bytes: int | None = None  # NVIDIA only: total over visible GPUs

    @property
    def platform(self) -> Platform:
        if self.chip_family is not None:
            return "apple-silicon"
        if self.nvidia_gpu:
            return "nvidia"
        return "cpu"

    @property
    def memory_gb(self) -> float:
        """Memory in GiB, the unit Apple sells unified memory in (a "16 GB" Mac has 16 GiB)."""
        return self.memory_bytes / GIB

    def describe(self) -> str:
        """One line, e.g. ``Apple M3 Max, 64 GB unified memory, 12P+4E cores``."""
        mem = f"{self.memory_gb:.0f} GB"
        if self.platform == "apple-silicon":
            cores = (
                f"{self.performance_cores}P+{self.efficiency_cores}E cores"
                if self.performance_cores is not None and self.efficiency_cores is not None
                else f"{self.cpu_count} cores"
            )
            return f"{self.chip or 'Apple Silicon'}, {mem} unified memory, {cores}"
        gpu = ""
        if self.nvidia_gpu:
            vram = (
                f" ({self.gpu_memory_bytes / GIB:.0f} GB)"
                if self.gpu_memory_bytes is not None
                else ""
            )
            gpu = f", NVIDIA GPU{vram}"
        return f"{self.system.capitalize()}, {mem} RAM, {self.cpu_count} CPUs{gpu}"

    @classmethod
    def apple(
        cls,
        family: str = "M3",
        variant: str | None = None,
        *,
        memory_gb: int,
        performance_cores: int = 4,
        efficiency_cores: int = 4,
    ) -> Hardware:
        """A simulated Mac, for tests, examples and "what would I get on…" questions."""
        chip = f"Apple {family}{f' {variant}' if variant else ''}"
        return cls(
            system="darwin",
            memory_bytes=memory_gb * GIB,
            cpu_count=performance_cores + efficiency_cores,
            chip=chip,
            chip_family=family,
            chip_variant=variant,
            performance_cores=performance_cores,
            efficiency_cores=efficiency_cores,
        )

    @classmethod
    def linux(
        cls, *, memory_gb: int, cpu_count: int = 8, gpu_memory_gb: int | None = None
    ) -> Hardware:
        """A simulated Linux box; ``gpu_memory_gb`` makes it an NVIDIA one."""
        return cls(
            system="linux",
            memory_bytes=memory_gb * GIB,
            cpu_count=cpu_count,
            nvidia_gpu=gpu_memory_gb is not None,
            gpu_memory_bytes=None if gpu_memory_gb is None else gpu_memory_gb * GIB,
        )


def detect_hardware(
    *,
    run: Runner = subprocess.run,
    system: str | None = None,
    machine: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
    virtual_memory: Callable[[], Any] = psutil.virtual_memory,
    cpu_count: Callable[[], int | None] = os.cpu_count,
) -> Hardware:
    """Probe this machine (or whatever the injected probes say it is)."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    total = int(virtual_memory().total)
    cpus = cpu_count() or 1
    if system == "darwin" and machine in ("arm64", "aarch64"):
        found = _apple(run, total, cpus)
        if found is not None:
            return found
    gpu_memory = _nvidia_memory(run, which)
    return Hardware(
        system=system,
        memory_bytes=total,
        cpu_count=cpus,
        nvidia_gpu=gpu_memory is not None,
        gpu_memory_bytes=gpu_memory,
    )


def _run_text(run: Runner, args: Sequence[str]) -> str | None:
    try:
        done = run(list(args), capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout or ""


def _apple(run: Runner, total: int, cpus: int) -> Hardware | None:
    # sysctl prints what it knows and complains about unknown keys (older macOS has
    # no perflevel keys), so parse stdout whatever the exit status.
    text = _run_text(run, ["sysctl", *_SYSCTL_KEYS])
    if text is None:
        return None
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    brand = values.get("machdep.cpu.brand_string", "")
    match = _CHIP_RE.search(brand)
    if match is None:
        return None
    return Hardware(
        system="darwin",
        memory_bytes=_int(values.get("hw.memsize")) or total,
        cpu_count=_int(values.get("hw.ncpu")) or cpus,
        chip=brand,
        chip_family=match.group(1).upper(),
        chip_variant=match.group(2).capitalize() if match.group(2) else None,
        performance_cores=_int(values.get("hw.perflevel0.physicalcpu")),
        efficiency_cores=_int(values.get("hw.perflevel1.physicalcpu")),
    )


def _nvidia_memory(run: Runner, which: Callable[[str], str | None]) -> int | None:
    """Total memory of the visible NVIDIA GPUs in bytes, or None when none is visible.

    ``nvidia-smi`` on the PATH without a working driver lists no GPU: that counts as none.
    """
    smi = which("nvidia-smi")
    if smi is None:
        return None
    text = _run_text(run, [smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"])
    mib = [m for m in (_int(line) for line in (text or "").splitlines()) if m]
    return sum(mib) * 1024 * 1024 if mib else None


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None
