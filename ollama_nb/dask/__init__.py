"""Batches over Dask DataFrames: ``ddf.ollama.chat(...)`` partition by partition on a cluster.

Importing this package registers the ``ollama`` accessor on
``dask.dataframe.DataFrame`` (``import ollama_nb`` does it too when Dask is
already imported). Each partition runs the pandas batch on a worker, so the two
can never disagree; what Dask adds is where the rows run, a cluster-wide bound
on requests per Ollama host (the scheduler's slot broker), and checkpoints that every worker can reach.

    import ollama_nb.dask
    out = ddf.ollama.chat("Label: {text}", model="llama3.2", checkpoint="runs/labels")
    out.to_parquet("labelled/")
"""

from . import accessor as _accessor  # registers ddf.ollama
from .accessor import DaskOllamaAccessor
from .broker import BROKER_NAME, HostTerms, SlotBroker
from .job import PartitionJob, run_partition
from .leases import BrokeredGate
from .status import cluster_leases

__all__ = [
    "BROKER_NAME",
    "BrokeredGate",
    "DaskOllamaAccessor",
    "HostTerms",
    "PartitionJob",
    "SlotBroker",
    "cluster_leases",
    "run_partition",
]

del _accessor
