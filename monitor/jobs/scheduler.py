"""The scheduler: one APScheduler job per concern, run only by the leader.

Each job runs with ``max_instances=1`` (a slow run is never overlapped by the next),
``coalesce=True`` (runs missed while down collapse into one) and an explicit misfire
grace. Every run is recorded in ``job_runs`` by :func:`monitor.jobs.runs.run_job`; a failed
run is logged and recorded, and the next one runs on schedule.

Leadership is checked by a heartbeat thread of its own (every ``heartbeat``, 5 s by
default; :class:`monitor.jobs.lease.Leadership`), not when a job fires, so a standby
takes over within a heartbeat of the leader's death and a fresh pair has a leader as
soon as it starts. A job that fires on the leader of record while the database is
unreachable is a failed attempt; attempts and outcomes the database could not take are
kept in memory (bounded) and written when it is back.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.errors import NotFoundError
from monitor.jobs.leader import LeaderLock
from monitor.jobs.lease import Leadership, LeaseState, NotLeaderError, Role
from monitor.jobs.names import JobName
from monitor.jobs.runs import (
    DEFAULT_HEARTBEAT,
    JobResult,
    RunNotRecordedError,
    UnrecordedRun,
    describe_error,
    record_runs,
    run_job,
)
from monitor.storage.schema import RunStatus

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


@dataclass
class _Overflow:
    """Failed attempts of one job dropped from the outbox: how many, from when to when."""

    count: int
    first: datetime
    last: datetime


class Service:
    """Runs the jobs on their intervals while this process holds the leader lock.

    Parameters
    ----------
    sessions, jobs, leader, clock
        The database, the jobs, the leader lock and the clock runs are stamped with.
    heartbeat
        How often leadership is checked (and runs refresh their heartbeat).
    stale_after
        The leader marks ``running`` rows whose heartbeat is older than this abandoned.
    identity
        This process's name in ``job_runs.owner`` and the lease (``host:pid``).
    unrecorded_limit
        How many runs the database could not take are kept for later; beyond that the
        oldest are summarised in one row per job when the database is back.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        jobs: Sequence[JobSpec],
        leader: LeaderLock,
        clock: Clock,
        *,
        heartbeat: timedelta = DEFAULT_HEARTBEAT,
        stale_after: timedelta = timedelta(seconds=60),
        identity: str | None = None,
        unrecorded_limit: int = 1000,
    ) -> None:
        names = [j.name for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate job names in {names}")
        if heartbeat <= timedelta(0):
            raise ValueError(f"heartbeat must be positive, got {heartbeat}")
        if unrecorded_limit < 1:
            raise ValueError(f"unrecorded_limit must be at least 1, got {unrecorded_limit}")
        self.sessions = sessions
        self.jobs: dict[str, JobSpec] = {str(j.name): j for j in jobs}
        self.clock = clock
        self.heartbeat = heartbeat
        self.leadership = Leadership(
            leader, sessions, clock, identity=identity, stale_after=stale_after
        )
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._unrecorded: deque[UnrecordedRun] = deque()
        self._unrecorded_limit = unrecorded_limit
        self._overflow: dict[str, _Overflow] = {}
        self._outbox_lock = threading.Lock()
        self._stopping = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
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
    def identity(self) -> str:
        """The name of this process among the replicas (``host:pid``)."""
        return self.leadership.identity

    @property
    def leading(self) -> bool:
        """Whether this process held the leader lock at its last check."""
        return self.leadership.state.role is Role.LEADER

    def lease_state(self) -> LeaseState:
        """Return the role now: the last check, or ``unknown`` if that is overdue."""
        return self.leadership.state.as_of(self.clock.now(), 3 * self.heartbeat)

    @property
    def unrecorded(self) -> int:
        """How many runs wait for the database to be recorded."""
        with self._outbox_lock:
            return len(self._unrecorded) + sum(o.count for o in self._overflow.values())

    def run_once(self, name: str) -> JobResult | None:
        """Run job ``name`` now if this process leads; return its result (None if not run).

        On the leader of record, a run that cannot be even started because the database
        is unreachable is a failed attempt, kept until the database can record it.
        """
        spec = self.jobs.get(name)
        if spec is None:
            raise NotFoundError(f"no job named {name!r}; jobs: {sorted(self.jobs)}")
        state = self.leadership.confirm()
        if state.role is Role.UNKNOWN and self.leadership.was_leader:
            now = self.clock.now()
            error = f"not run: leadership unconfirmed: {state.error}"
            log.error("job %s %s", name, error)
            self._keep(UnrecordedRun(name, RunStatus.FAILED, now, now, error, self.identity))
            return None
        if state.role is not Role.LEADER:
            log.info("not the leader (%s): skipping %s", state.role.value, name)
            return None
        try:
            result, report = run_job(
                self.sessions,
                spec.name,
                self.clock,
                spec.work,
                owner=self.identity,
                heartbeat=self.heartbeat,
            )
        except RunNotRecordedError as exc:
            log.error("job %s: %s", name, exc)
            self._keep(exc.run)
            return None
        except Exception:
            log.exception("job %s failed", name)
            return None
        log.info("job %s finished: %s", name, report.counts)
        return result

    def _keep(self, run: UnrecordedRun) -> None:
        with self._outbox_lock:
            self._unrecorded.append(run)
            while len(self._unrecorded) > self._unrecorded_limit:
                # the oldest is summarised; if it had a row, that row stays `running`
                # with a stopped heartbeat, and the leader marks it abandoned
                old = self._unrecorded.popleft()
                entry = self._overflow.setdefault(
                    old.job, _Overflow(0, old.started_at, old.finished_at)
                )
                entry.count += 1
                entry.first = min(entry.first, old.started_at)
                entry.last = max(entry.last, old.finished_at)

    def flush_unrecorded(self) -> int:
        """Write the runs the database could not take; return how many rows were written.

        Attempts beyond ``unrecorded_limit`` are written as one failed row per job that
        says how many there were and when.
        """
        with self._outbox_lock:
            runs = list(self._unrecorded)
            overflow = {
                job: _Overflow(o.count, o.first, o.last) for job, o in self._overflow.items()
            }
        if not runs and not overflow:
            return 0
        summaries = [
            UnrecordedRun(
                job,
                RunStatus.FAILED,
                o.first,
                o.last,
                f"{o.count} more failed attempts between {o.first.isoformat()} and "
                f"{o.last.isoformat()} (not recorded one by one: more than "
                f"{self._unrecorded_limit} waited for the database)",
                self.identity,
                {"attempts": o.count},
            )
            for job, o in sorted(overflow.items())
        ]
        record_runs(self.sessions, summaries + runs)
        with self._outbox_lock:
            for run in runs:
                if run in self._unrecorded:
                    self._unrecorded.remove(run)
            for job, written in overflow.items():
                entry = self._overflow[job]
                entry.count -= written.count
                if entry.count <= 0:
                    del self._overflow[job]
        log.info("recorded %d runs kept while the database was unavailable", len(runs))
        return len(summaries) + len(runs)

    def tick(self) -> LeaseState:
        """One heartbeat: check leadership, then record what waited for the database."""
        state = self.leadership.check()
        if state.role is not Role.UNKNOWN and self.unrecorded:
            try:
                self.flush_unrecorded()
            except SQLAlchemyError as exc:
                log.warning("recording kept runs failed: %s", describe_error(exc))
        return state

    def _beat(self) -> None:
        while not self._stopping.wait(self.heartbeat.total_seconds()):
            try:
                self.tick()
            except Exception:  # the heartbeat must outlive any single failure
                log.exception("leader heartbeat failed")

    def trigger(self, name: str) -> None:
        """Schedule job ``name`` to run as soon as possible (on the leader only).

        Raises
        ------
        NotFoundError
            If there is no job ``name``.
        NotLeaderError
            If this process does not lead (its state names the leader, if known).
        """
        if name not in self.jobs:
            raise NotFoundError(f"no job named {name!r}; jobs: {sorted(self.jobs)}")
        state = self.leadership.confirm()
        if state.role is not Role.LEADER:
            raise NotLeaderError(state, self.clock.now())
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

    def start(self, url: str | None = None) -> None:
        """Elect (one check now), then start the heartbeat and the scheduler.

        ``url`` is where this process serves its API, written on the lease while leading.
        """
        self.leadership.url = url
        self._stopping.clear()
        self.tick()
        self._heartbeat_thread = threading.Thread(
            target=self._beat, name="segmon-leader-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()
        self.scheduler.start()

    def shutdown(self) -> None:
        """Stop scheduling, wait for running jobs, stop the heartbeat, give up leadership."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self._stopping.set()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(timeout=30)
            self._heartbeat_thread = None
        if self.unrecorded:
            try:
                self.flush_unrecorded()
            except SQLAlchemyError as exc:
                log.error(
                    "%d runs could not be recorded before shutdown: %s",
                    self.unrecorded,
                    describe_error(exc),
                )
        self.leadership.release()
