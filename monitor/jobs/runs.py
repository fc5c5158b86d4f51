"""Job runs: every job records its start, end, status, counts and error.

A job's work is a callable that takes the run's id (so every result row it writes
records which run wrote it) and returns a :class:`JobResult`: any object with a
``counts()`` method, the JSON-serialisable summary stored on the run's row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.jobs.names import JobName
from monitor.secrets import redact
from monitor.storage.schema import JobRun, RunStatus

__all__ = ["JobName", "JobReport", "JobResult", "run_job"]


class JobResult(Protocol):
    """What a job's work returns: its typed report, summarised by ``counts()``."""

    def counts(self) -> dict[str, Any]:
        """Return the JSON-serialisable counts stored on the run's row."""
        ...


@dataclass(frozen=True)
class JobReport:
    """How one job run ended."""

    job: JobName
    run_id: int
    status: RunStatus
    started_at: datetime
    finished_at: datetime
    counts: Mapping[str, Any]
    error: str | None = None


R = TypeVar("R", bound=JobResult)


def run_job(
    sessions: sessionmaker[Session], job: JobName, clock: Clock, work: Callable[[int], R]
) -> tuple[R, JobReport]:
    """Run ``work(run_id)`` as job ``job``, recording it in ``job_runs``.

    The run row is committed before the work starts, so a crash leaves a ``running``
    row behind; the work gets the row's id to stamp on the rows it writes. A failure is
    recorded with its error and re-raised: jobs catch only at this boundary.

    Returns
    -------
    tuple
        What ``work`` returned, and the run's :class:`JobReport`.
    """
    started = clock.now()
    with sessions.begin() as session:
        run = JobRun(job=str(job), started_at=started, status=RunStatus.RUNNING, counts={})
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        result = work(run_id)
    except BaseException as exc:
        with sessions.begin() as session:
            row = session.get_one(JobRun, run_id)
            row.status = RunStatus.FAILED
            row.finished_at = clock.now()
            row.error = redact(f"{type(exc).__name__}: {exc}")[:4000]
        raise
    counts = result.counts()
    finished = clock.now()
    with sessions.begin() as session:
        row = session.get_one(JobRun, run_id)
        row.status = RunStatus.SUCCESS
        row.finished_at = finished
        row.counts = counts
    return result, JobReport(job, run_id, RunStatus.SUCCESS, started, finished, counts)
