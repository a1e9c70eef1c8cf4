"""``ddf.ollama``: the pandas batch, partition by partition, lazily.

Everything that can be wrong with the call is found while the graph is built:
the pandas batch runs once on the frame's empty ``_meta``, which validates the
template against the columns, the schema, the options and the column names,
sends nothing, and returns exactly the columns and dtypes every partition will
return, so ``meta`` can never drift from the real result.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import dask.dataframe as dd
import pandas as pd
from dask.dataframe.extensions import register_dataframe_accessor
from distributed import get_client

from ..batch import batch, embed_column
from ..batch.api import Template
from ..batch.checkpoint import is_url, plain_location
from ..domain import InvalidInputError
from ..domain.checks import whole_number
from ..request_builder import resolve_model
from ..runtime import Runtime, get_runtime
from .job import Kind, PartitionJob, run_partition
from .leases import ClusterLeases


@register_dataframe_accessor("ollama")  # type: ignore[no-untyped-call]
class DaskOllamaAccessor:
    """``ddf.ollama.chat("Classify: {text}")``; the same arguments as ``df.ollama``.

    ``concurrency`` bounds requests in flight at the host across the whole
    cluster (default: the slots this kernel knows the server has).
    ``checkpoint`` is a folder (or an fsspec URL such as ``s3://bucket/run``)
    that every worker can reach; each partition keeps its finished rows there,
    so running the same call again sends none of them.
    """

    def __init__(self, frame: dd.DataFrame) -> None:
        self._frame = frame

    def chat(self, template: Template, **kwargs: Any) -> dd.DataFrame:
        """One ``/api/chat`` request per row; arguments as ``ollama_nb.batch``."""
        return self._rows("chat", template, kwargs, get_runtime())

    def generate(self, template: Template, **kwargs: Any) -> dd.DataFrame:
        """One ``/api/generate`` request per row; arguments as ``ollama_nb.batch``."""
        return self._rows("generate", template, kwargs, get_runtime())

    def embed(self, column: Hashable, **kwargs: Any) -> dd.DataFrame:
        """A vector per row of ``column``; arguments as ``df.ollama.embed``."""
        return self._rows("embed", column, kwargs, get_runtime())

    def _rows(
        self, kind: Kind, what: Any, kwargs: dict[str, Any], runtime: Runtime
    ) -> dd.DataFrame:
        if "progress" in kwargs:
            raise InvalidInputError(
                "progress= does not apply to a Dask frame: Dask shows partitions, not rows.",
                hint="Use distributed.progress(result.persist()) or the Dask dashboard.",
            )
        arguments = dict(kwargs)
        capability = "embedding" if kind == "embed" else "completion"
        arguments["model"] = resolve_model(
            arguments.get("model"), runtime.settings, runtime.choose_model, capability
        ).value
        checkpoint = arguments.pop("checkpoint", None)
        if checkpoint is not None and not isinstance(checkpoint, str):
            checkpoint = str(checkpoint)
        if checkpoint is not None and kind == "embed":
            raise InvalidInputError(
                "checkpoint= is for chat and generate; embeddings are cheap to redo."
            )
        if checkpoint is not None:
            plain_location(checkpoint)  # a file: URI is refused before any partition runs
        if checkpoint is not None and not is_url(checkpoint) and checkpoint.endswith(".sqlite"):
            raise InvalidInputError(
                f"checkpoint={checkpoint!r} looks like a file; a Dask batch needs a folder.",
                hint="Give a folder (or an fsspec URL): each partition keeps its own file there.",
            )
        meta = _meta(self._frame._meta, kind, what, arguments)
        leases = _cluster_leases(runtime, arguments.get("concurrency"))
        settings = runtime.settings.model_dump()
        job = PartitionJob(
            kind=kind,
            what=what,
            arguments=arguments,
            settings=settings,
            leases=leases,
            checkpoint=checkpoint,
        )
        lazy: dd.DataFrame = self._frame.map_partitions(run_partition, job, meta=meta)  # type: ignore[no-untyped-call]
        return lazy


def _meta(empty: pd.DataFrame, kind: Kind, what: Any, arguments: dict[str, Any]) -> pd.DataFrame:
    """The result's empty frame, from the real pandas batch on zero rows (which sends nothing)."""
    if kind == "embed":
        return embed_column(empty, what, progress=False, **arguments)
    return batch(empty, what, kind=kind, progress=False, **arguments)


def _cluster_leases(runtime: Runtime, concurrency: object) -> tuple[ClusterLeases, ...]:
    """One cluster-wide bound per server when a distributed client is active, else none.

    Without a distributed client the partitions run as threads of this kernel,
    all through this runtime's own gates, which already bound them. An explicit
    ``concurrency`` is shared out over the servers as the pool shares it;
    otherwise each server gets the slots this kernel has learned it runs.
    """
    try:
        get_client()
    except ValueError:
        return ()
    concurrency = whole_number("concurrency", concurrency, 1, optional=True)
    members = runtime.pool.members
    leases = []
    for member in members:
        if isinstance(concurrency, int):
            slots = -(-concurrency // len(members))
        else:
            slots = member.gate.limit
        leases.append(ClusterLeases(host=member.host, slots=slots))
    return tuple(leases)
