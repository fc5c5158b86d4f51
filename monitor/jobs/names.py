"""The names of segmon's jobs: one enum for the scheduler, the CLI, the demo and the rules."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["JobName"]


class JobName(StrEnum):
    """Every job segmon records in ``job_runs`` (the ``job`` label of the job metrics).

    Examples
    --------
    >>> [str(name) for name in JobName]
    ['ingest', 'holdout_import', 'embed', 'shadow', 'drift', 'evaluate', 'queue', 'canary']
    """

    INGEST = "ingest"
    HOLDOUT_IMPORT = "holdout_import"
    EMBED = "embed"
    SHADOW = "shadow"
    DRIFT = "drift"
    EVALUATE = "evaluate"
    QUEUE = "queue"
    CANARY = "canary"
