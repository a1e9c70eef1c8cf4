"""What a worker runs for one partition: the pandas batch, configured like the client.

A worker is another process (often another machine): it has no ``%ollama
config`` of its own, so the client's settings travel with the job and the
worker's runtime takes them before the first row. Rows then go through the very
same ``batch``/``embed_column`` a notebook uses, with per-row progress bars off
(Dask's progress bar and dashboard show partitions) and a checkpoint of their
own per partition.

Telemetry: the worker's runtime writes its request events to the metrics store
in the client's data directory. The store is SQLite in WAL mode with a busy
timeout, written by several kernels at once already, so on a LocalCluster (or
workers sharing that folder) every row lands beside the notebook's own; sending
events back through the scheduler would cost a message per row for nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from distributed import get_worker

from ..batch import batch, embed_column
from ..runtime import Runtime, get_runtime
from .broker import HostTerms
from .checkpoints import partition_checkpoint
from .leases import BrokeredGate

Kind = Literal["chat", "generate", "embed"]


@dataclass(frozen=True)
class PartitionJob:
    """Everything a worker needs for one partition; pickled into the task graph once."""

    kind: Kind
    #: The prompt template (chat/generate) or the text column (embed).
    what: Any
    #: Keyword arguments for ``batch``/``embed_column``, model already resolved on the client.
    arguments: Mapping[str, Any]
    #: The client's settings that decide where and how requests go.
    settings: Mapping[str, Any]
    #: How each server is bounded cluster-wide (by the scheduler's slot broker); empty
    #: when the partitions run in this kernel, whose own gates bound them.
    terms: tuple[HostTerms, ...] = ()
    checkpoint: str | None = None

    def run(self, part: pd.DataFrame, number: int) -> pd.DataFrame:
        _worker_runtime(self)
        arguments = dict(self.arguments)
        if self.terms:
            # The cluster-wide bound replaces a batch's own width: each worker's gates admit
            # as many as the broker's limit allows, and the broker keeps the sum in bounds.
            arguments.pop("concurrency", None)
        if self.kind == "embed":
            return embed_column(part, self.what, progress=False, **arguments)
        if self.checkpoint is not None:
            arguments["checkpoint"] = partition_checkpoint(self.checkpoint, number)
        return batch(part, self.what, kind=self.kind, progress=False, **arguments)


def run_partition(
    part: pd.DataFrame, job: PartitionJob, partition_info: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``map_partitions`` target; Dask passes ``partition_info`` with the partition's number."""
    number = int(partition_info["number"]) if partition_info else 0
    return job.run(part, number)


#: A worker runs partitions on several threads at once; one of them sets the runtime up.
_SETTING_UP = threading.Lock()


def _worker_runtime(job: PartitionJob) -> Runtime:
    """This process's runtime, set to the client's settings and the broker's terms once."""
    with _SETTING_UP:
        runtime = get_runtime()
        changes = {k: v for k, v in job.settings.items() if getattr(runtime.settings, k) != v}
        if changes:
            runtime.configure(**changes)
        if job.terms:
            _install_brokered_gates(runtime, job.terms)
        return runtime


def _install_brokered_gates(runtime: Runtime, terms: tuple[HostTerms, ...]) -> None:
    try:
        worker = get_worker()
    except ValueError:
        return  # not on a distributed worker (the synchronous scheduler): no cluster to bound
    for host_terms in terms:
        member = runtime.pool.member(host_terms.host)
        if member is None:
            continue
        if isinstance(member.gate, BrokeredGate):
            # One gate per host for the worker's life: requests in flight keep their slots,
            # and the next lease asks on the new job's terms.
            member.gate.terms = host_terms
            continue
        gate = BrokeredGate(host_terms, worker, vision_limit=runtime.settings.vision_parallel)
        runtime.replace_gate(host_terms.host, gate)
