"""Where each partition keeps its finished rows, so a rerun sends none of them again.

One checkpoint per partition, named by the partition's number: workers never
share a file, so a local directory works for a LocalCluster (and for a folder
every worker mounts), and an fsspec URL (``s3://bucket/run``, ``gcs://...``)
for workers on other machines. The number is stable for the same frame read the
same way; rows are keyed by their content, so a rerun finds them again.
"""

from __future__ import annotations

from ..batch.checkpoint import is_url, plain_location


def partition_checkpoint(location: str, number: int) -> str:
    """The checkpoint of partition ``number`` under ``location`` (a folder or a URL).

    Each partition's file is a ``Checkpoint`` like a pandas batch's (private, no
    symlinks, rows sealed and checked); a ``file:`` URI is refused here, before any
    partition runs.
    """
    plain_location(location)
    name = f"part-{number:05d}"
    if is_url(location):
        return f"{location.rstrip('/')}/{name}"
    return f"{location.rstrip('/')}/{name}.sqlite"
