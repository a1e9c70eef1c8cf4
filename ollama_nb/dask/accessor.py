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
from distributed import Client, get_client

from ..batch import batch, embed_column
from ..batch.api import Template
from ..batch.checkpoint import is_url, plain_location
from ..domain import InvalidInputError
from ..domain.checks import whole_number
from ..request_builder import resolve_model
from ..runtime import Runtime, get_runtime
from .broker import BROKER_NAME, HostTerms, SlotBroker
from .job import Kind, PartitionJob, run_partition


@register_dataframe_accessor("ollama")  # type: ignore[no-untyped-call]
class DaskOllamaAccessor:
    """``ddf.ollama.chat("Classify: {text}")``; the same arguments as ``df.ollama``.

    ``concurrency`` bounds requests in flight at the hosts across the whole
    cluster; by default the scheduler's slot broker learns each server's slots
    from every worker's requests, as a kernel's own controller does.
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
        terms = _cluster_terms(runtime, arguments.get("concurrency"))
        settings = runtime.settings.model_dump()
        job = PartitionJob(
            kind=kind,
            what=what,
            arguments=arguments,
            settings=settings,
            terms=terms,
            checkpoint=checkpoint,
        )
        lazy: dd.DataFrame = self._frame.map_partitions(run_partition, job, meta=meta)  # type: ignore[no-untyped-call]
        return lazy


def _meta(empty: pd.DataFrame, kind: Kind, what: Any, arguments: dict[str, Any]) -> pd.DataFrame:
    """The result's empty frame, from the real pandas batch on zero rows (which sends nothing)."""
    if kind == "embed":
        return embed_column(empty, what, progress=False, **arguments)
    return batch(empty, what, kind=kind, progress=False, **arguments)


def _cluster_terms(runtime: Runtime, concurrency: object) -> tuple[HostTerms, ...]:
    """How each server is bounded across the cluster when a distributed client is active.

    Without a distributed client the partitions run as threads of this kernel,
    all through this runtime's own gates, which already bound them. With one,
    the scheduler's slot broker is registered (once: a second registration keeps
    what the first learned) and each server gets the terms its controller is
    built from here; an explicit ``concurrency`` is shared out over the servers
    as the pool shares it, and pins the cluster-wide bound.
    """
    try:
        client = get_client()
    except ValueError:
        return ()
    concurrency = whole_number("concurrency", concurrency, 1, optional=True)
    _register_broker(client)
    s = runtime.settings
    members = runtime.pool.members
    width = None if concurrency is None else -(-concurrency // len(members))
    return tuple(
        HostTerms(
            host=member.host,
            known=s.known_parallel if member.host == s.host else None,
            ceiling=s.max_concurrency,
            adaptive=s.adaptive_concurrency,
            width=width,
        )
        for member in members
    )


def _register_broker(client: Client) -> None:
    if client.asynchronous:
        raise InvalidInputError(
            "ddf.ollama needs a synchronous distributed.Client to register its slot broker.",
            hint="Register it yourself first: await client.register_plugin("
            "ollama_nb.dask.SlotBroker(), name=ollama_nb.dask.BROKER_NAME)",
        )
    client.register_plugin(SlotBroker(), name=BROKER_NAME)
