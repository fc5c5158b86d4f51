"""The scheduler: one APScheduler job per concern, run only by the leader.

Each job runs with ``max_instances=1`` (a slow run is never overlapped by the next),
``coalesce=True`` (runs missed while down collapse into one) and an explicit misfire
grace. Every run is recorded in ``job_runs`` by :func:`monitor.jobs.runs.run_job`; a failed
run is logged and recorded, and the next one runs on schedule.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.errors import NotFoundError
from monitor.jobs.leader import LeaderLock
from monitor.jobs.names import JobName
from monitor.jobs.runs import JobResult, run_job

log = logging.getLogger("segmon.scheduler")


@dataclass(frozen=True)
class JobSpec:
    """A job the scheduler runs every ``interval``."""

    name: JobName
    interval: timedelta
    work: Callable[[int], JobResult]
    misfire_grace: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class JobState:
    """A scheduled job as the admin API shows it."""

    name: str
    interval_s: float
    next_run_at: str | None


class Service:
    """Runs the jobs on their intervals while this process holds the leader lock."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        jobs: Sequence[JobSpec],
        leader: LeaderLock,
        clock: Clock,
    ) -> None:
        names = [j.name for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate job names in {names}")
        self.sessions = sessions
        self.jobs: dict[str, JobSpec] = {str(j.name): j for j in jobs}
        self.leader = leader
        self.clock = clock
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._leading = False
        self._lock = threading.Lock()
        for job in jobs:
            self.scheduler.add_job(
                self.run_once,
                IntervalTrigger(seconds=job.interval.total_seconds()),
                args=[job.name],
                id=job.name,
                name=job.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(job.misfire_grace.total_seconds()),
            )

    @property
    def leading(self) -> bool:
        """Whether this process held the leader lock at its last check."""
        return self._leading

    def run_once(self, name: str) -> JobResult | None:
        """Run job ``name`` now if this process leads; return its result (None if not leader)."""
        spec = self.jobs.get(name)
        if spec is None:
            raise NotFoundError(f"no job named {name!r}; jobs: {sorted(self.jobs)}")
        with self._lock:
            self._leading = self.leader.try_acquire()
        if not self._leading:
            log.info("not the leader: skipping %s", name)
            return None
        try:
            result, report = run_job(self.sessions, spec.name, self.clock, spec.work)
        except Exception:
            log.exception("job %s failed", name)
            return None
        log.info("job %s finished: %s", name, report.counts)
        return result

    def trigger(self, name: str) -> None:
        """Schedule job ``name`` to run as soon as possible."""
        if name not in self.jobs:
            raise NotFoundError(f"no job named {name!r}; jobs: {sorted(self.jobs)}")
        self.scheduler.modify_job(name, next_run_time=self.clock.now())

    def states(self) -> list[JobState]:
        """Return the scheduled jobs and when each runs next."""
        out = []
        for job in self.scheduler.get_jobs():
            next_run: Any = getattr(job, "next_run_time", None)
            out.append(
                JobState(
                    job.id,
                    self.jobs[job.id].interval.total_seconds(),
                    next_run.isoformat() if next_run else None,
                )
            )
        return out

    def start(self) -> None:
        """Start the background scheduler."""
        self.scheduler.start()

    def shutdown(self) -> None:
        """Stop scheduling, wait for running jobs, give up leadership."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.leader.release()
        self._leading = False
