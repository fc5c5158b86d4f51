"""Job runs: every job records its start, end, status, counts and error."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.storage.schema import JobRun, RunStatus


@dataclass(frozen=True)
class JobReport:
    """How one job run ended."""

    job: str
    run_id: int
    status: RunStatus
    started_at: datetime
    finished_at: datetime
    counts: Mapping[str, Any]
    error: str | None = None


class HasCounts:
    """Mixin for job results that expose counts for the job-run row."""

    def counts(self) -> dict[str, Any]:
        """Return JSON-serialisable counts."""
        raise NotImplementedError


R = TypeVar("R", bound=HasCounts)


def run_job(
    sessions: sessionmaker[Session], job: str, clock: Clock, work: Callable[[], R]
) -> tuple[R, JobReport]:
    """Run ``work`` as job ``job``, recording it in ``job_runs``.

    The run row is committed before the work starts, so a crash leaves a ``running``
    row behind. A failure is recorded with its error and re-raised: jobs catch only at
    this boundary.

    Returns
    -------
    tuple
        What ``work`` returned, and the run's :class:`JobReport`.
    """
    started = clock.now()
    with sessions.begin() as session:
        run = JobRun(job=job, started_at=started, status=RunStatus.RUNNING, counts={})
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        result = work()
    except BaseException as exc:
        with sessions.begin() as session:
            row = session.get_one(JobRun, run_id)
            row.status = RunStatus.FAILED
            row.finished_at = clock.now()
            row.error = f"{type(exc).__name__}: {exc}"[:4000]
        raise
    counts = result.counts()
    finished = clock.now()
    with sessions.begin() as session:
        row = session.get_one(JobRun, run_id)
        row.status = RunStatus.SUCCESS
        row.finished_at = finished
        row.counts = counts
    return result, JobReport(job, run_id, RunStatus.SUCCESS, started, finished, counts)
