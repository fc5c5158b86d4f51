"""Job runs: every job records its start, end, status, counts, error and owner.

A job's work is a callable that takes the run's id (so every result row it writes
records which run wrote it) and returns a :class:`JobResult`: any object with a
``counts()`` method, the JSON-serialisable summary stored on the run's row.

Liveness: while the work runs, a :class:`RunHeartbeat` refreshes the row's
``heartbeat_at``; a ``running`` row whose heartbeat has stopped belongs to a process that
died (or lost the database), and the leader marks it ``abandoned``
(:func:`abandon_stale_runs`).

Database outages: when the run's row cannot be written (at the start, or its outcome at
the end), :func:`run_job` raises :class:`RunNotRecordedError` carrying the row as it
should read (:class:`UnrecordedRun`); :func:`record_runs` writes it once the database is
back.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import Clock
from monitor.errors import SegmonError
from monitor.jobs.names import JobName
from monitor.secrets import redact
from monitor.storage.schema import JobRun, RunStatus

__all__ = [
    "JobName",
    "JobReport",
    "JobResult",
    "RunHeartbeat",
    "RunNotRecordedError",
    "UnrecordedRun",
    "abandon_stale_runs",
    "describe_error",
    "process_identity",
    "record_runs",
    "run_job",
]

log = logging.getLogger("segmon.runs")

DEFAULT_HEARTBEAT = timedelta(seconds=5)
"""How often a running job refreshes its row's ``heartbeat_at``."""

ERROR_LIMIT = 4000
"""Characters of an error kept on a run's row."""


def process_identity() -> str:
    """Return this process's name in ``job_runs.owner`` and the leader lease: ``host:pid``.

    Examples
    --------
    >>> process_identity() == f"{socket.gethostname()}:{os.getpid()}"
    True
    """
    return f"{socket.gethostname()}:{os.getpid()}"


def describe_error(exc: BaseException) -> str:
    """Return ``Class: message`` of an exception, secrets redacted, cut to what a row keeps.

    Examples
    --------
    >>> describe_error(ValueError("bad value 'x'"))
    "ValueError: bad value 'x'"
    >>> len(describe_error(RuntimeError("y" * 5000)))
    4000
    """
    return redact(f"{type(exc).__name__}: {exc}")[:ERROR_LIMIT]


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


@dataclass(frozen=True)
class UnrecordedRun:
    """A run's row as it should read, kept while the database cannot take it.

    ``run_id`` is the row written at the start, or None when not even that was written
    (the attempt failed before its work started).

    Examples
    --------
    >>> from datetime import UTC
    >>> t = datetime(2026, 11, 24, tzinfo=UTC)
    >>> run = UnrecordedRun("ingest", RunStatus.FAILED, t, t, "OperationalError: down", "h:1")
    >>> run.run_id is None, run.status.value
    (True, 'failed')
    """

    job: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime
    error: str | None
    owner: str | None
    counts: Mapping[str, Any] = field(default_factory=dict)
    run_id: int | None = None


class RunNotRecordedError(SegmonError, RuntimeError):
    """A job run whose row could not be written: the database is unavailable.

    ``run`` holds the row as it should read, for :func:`record_runs` to write later.
    """

    def __init__(self, run: UnrecordedRun, cause: BaseException) -> None:
        which = f"run #{run.run_id}" if run.run_id is not None else "run"
        outcome = run.status.value + (f" ({run.error})" if run.error else "")
        super().__init__(
            f"{run.job} {which} could not be recorded as {outcome}: "
            f"database unavailable: {describe_error(cause)}"
        )
        self.run = run


R = TypeVar("R", bound=JobResult)


class RunHeartbeat:
    """Refreshes a running row's ``heartbeat_at`` every ``interval`` in a daemon thread.

    A failed refresh (the database is busy or down) is logged and tried again at the
    next beat; the run itself never fails because of its heartbeat.
    """

    def __init__(
        self, sessions: sessionmaker[Session], run_id: int, clock: Clock, interval: timedelta
    ) -> None:
        if interval <= timedelta(0):
            raise ValueError(f"heartbeat interval must be positive, got {interval}")
        self.sessions = sessions
        self.run_id = run_id
        self.clock = clock
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start beating (the first beat comes one interval after the start)."""
        self._thread = threading.Thread(
            target=self._beat, name=f"segmon-run-{self.run_id}-heartbeat", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; waits a little for a beat in progress (a late one changes nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, self.interval.total_seconds()))
            self._thread = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval.total_seconds()):
            try:
                with self.sessions.begin() as session:
                    session.execute(
                        update(JobRun)
                        .where(JobRun.id == self.run_id, JobRun.status == RunStatus.RUNNING)
                        .values(heartbeat_at=self.clock.now())
                    )
            except SQLAlchemyError as exc:
                log.warning("heartbeat of run #%d failed: %s", self.run_id, describe_error(exc))


def _write_outcome(sessions: sessionmaker[Session], run: UnrecordedRun) -> None:
    with sessions.begin() as session:
        row = session.get_one(JobRun, run.run_id)
        row.status = run.status
        row.finished_at = run.finished_at
        row.error = run.error
        row.counts = dict(run.counts)


def run_job(
    sessions: sessionmaker[Session],
    job: JobName,
    clock: Clock,
    work: Callable[[int], R],
    *,
    owner: str | None = None,
    heartbeat: timedelta = DEFAULT_HEARTBEAT,
) -> tuple[R, JobReport]:
    """Run ``work(run_id)`` as job ``job``, recording it in ``job_runs``.

    The run row is committed before the work starts, so a crash leaves a ``running``
    row behind, whose heartbeat then stops; the work gets the row's id to stamp on the
    rows it writes. A failure is recorded with its error and re-raised: jobs catch only
    at this boundary.

    Parameters
    ----------
    owner
        Who runs it (``host:pid`` of this process by default).
    heartbeat
        How often the row's ``heartbeat_at`` is refreshed while the work runs.

    Returns
    -------
    tuple
        What ``work`` returned, and the run's :class:`JobReport`.

    Raises
    ------
    RunNotRecordedError
        If the row could not be written at the start (the work did not run) or its
        outcome at the end; the error carries the row for :func:`record_runs`.
    """
    who = owner or process_identity()
    started = clock.now()
    try:
        with sessions.begin() as session:
            run = JobRun(
                job=str(job),
                started_at=started,
                status=RunStatus.RUNNING,
                counts={},
                owner=who,
                heartbeat_at=started,
            )
            session.add(run)
            session.flush()
            run_id = run.id
    except SQLAlchemyError as exc:
        attempt = UnrecordedRun(
            str(job),
            RunStatus.FAILED,
            started,
            clock.now(),
            f"not started: {describe_error(exc)}",
            who,
        )
        raise RunNotRecordedError(attempt, exc) from exc
    beat = RunHeartbeat(sessions, run_id, clock, heartbeat)
    beat.start()
    try:
        result = work(run_id)
    except BaseException as exc:
        beat.stop()
        failed = UnrecordedRun(
            str(job), RunStatus.FAILED, started, clock.now(), describe_error(exc), who, {}, run_id
        )
        try:
            _write_outcome(sessions, failed)
        except SQLAlchemyError as db_exc:
            if isinstance(exc, Exception):
                raise RunNotRecordedError(failed, db_exc) from exc
            log.error("run #%d of %s: %s not recorded", run_id, job, failed.error)
        raise
    finally:
        beat.stop()
    counts = result.counts()
    finished = clock.now()
    done = UnrecordedRun(str(job), RunStatus.SUCCESS, started, finished, None, who, counts, run_id)
    try:
        _write_outcome(sessions, done)
    except SQLAlchemyError as exc:
        raise RunNotRecordedError(done, exc) from exc
    return result, JobReport(job, run_id, RunStatus.SUCCESS, started, finished, counts)


def record_runs(sessions: sessionmaker[Session], runs: Sequence[UnrecordedRun]) -> list[int]:
    """Write runs that could not be recorded when they happened; return their row ids.

    A run whose start was recorded gets its outcome written on that row (whatever the
    row says now, ``abandoned`` included: this is what happened); an attempt without a
    row gets a new one. All or nothing: one transaction.
    """
    ids: list[int] = []
    with sessions.begin() as session:
        for run in runs:
            row = session.get(JobRun, run.run_id) if run.run_id is not None else None
            if row is None:
                row = JobRun(job=run.job, started_at=run.started_at, owner=run.owner)
                session.add(row)
            row.status = run.status
            row.finished_at = run.finished_at
            row.error = run.error
            row.counts = dict(run.counts)
            session.flush()
            ids.append(row.id)
    return ids


def abandon_stale_runs(
    sessions: sessionmaker[Session], *, now: datetime, stale_after: timedelta, by: str
) -> list[int]:
    """Mark ``running`` rows whose heartbeat is older than ``stale_after`` as abandoned.

    The last sign of life is ``heartbeat_at`` (``started_at`` for rows written before
    heartbeats existed). Each row is updated only if it is still ``running`` and still
    stale, so a run that finishes meanwhile keeps its own outcome.

    Returns
    -------
    list of int
        The ids of the rows marked ``abandoned`` (``finished_at`` = ``now``,
        ``abandoned_by`` = ``by``).
    """
    cutoff = now - stale_after
    stale = or_(
        JobRun.heartbeat_at < cutoff,
        and_(JobRun.heartbeat_at.is_(None), JobRun.started_at < cutoff),
    )
    marked: list[int] = []
    with sessions.begin() as session:
        candidates = session.execute(
            select(JobRun.id, JobRun.owner, JobRun.heartbeat_at, JobRun.started_at)
            .where(JobRun.status == RunStatus.RUNNING, stale)
            .order_by(JobRun.id)
        ).all()
        for run_id, owner, heartbeat_at, started_at in candidates:
            last = heartbeat_at or started_at
            error = (
                f"abandoned: no heartbeat from {owner or 'an unknown process'} since "
                f"{last.isoformat()}; marked by {by} at {now.isoformat()}"
            )
            done = session.execute(
                update(JobRun)
                .where(JobRun.id == run_id, JobRun.status == RunStatus.RUNNING, stale)
                .values(status=RunStatus.ABANDONED, finished_at=now, abandoned_by=by, error=error)
            )
            if done.rowcount:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
                marked.append(run_id)
    return marked
