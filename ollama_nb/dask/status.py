"""What the scheduler's slot broker holds and has learned, for ``%ollama status`` and tests.

A worker's own gate only mirrors the cluster's limit; the slots a cluster has
learned live on the scheduler, so this asks there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from distributed import Client, get_client

from .broker import BROKER_NAME, HostLeases, SlotBroker

if TYPE_CHECKING:
    from distributed import Scheduler


def cluster_leases(client: Client | None = None) -> list[HostLeases]:
    """Each host's cluster-wide limit, leases held (per worker) and controller status.

    Empty when no ``ddf.ollama`` batch has registered the broker on this cluster yet.
    """
    connected = client if client is not None else get_client()
    leases: list[HostLeases] = connected.run_on_scheduler(_broker_leases)  # type: ignore[no-untyped-call]
    return leases


def _broker_leases(dask_scheduler: Scheduler) -> list[HostLeases]:
    broker = dask_scheduler.plugins.get(BROKER_NAME)
    return broker.leases() if isinstance(broker, SlotBroker) else []
