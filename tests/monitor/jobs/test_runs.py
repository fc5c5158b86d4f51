"""Job runs: owners and heartbeats, abandoned runs, runs the database could not take."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock, SystemClock
from monitor.jobs.names import JobName
from monitor.jobs.runs import RunNotRecordedError, abandon_stale_runs, record_runs, run_job
from monitor.storage.schema import JobRun, RunStatus
from tests.support.outage import OutageSessions

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@dataclass
class Counted:
    n: int

    def counts(self) -> dict[str, Any]:
        return {"n": self.n}


def test_a_run_names_its_owner_and_beats_while_it_works(sessions: sessionmaker[Session]) -> None:
    def slow(_run_id: int) -> Counted:
        time.sleep(0.8)
        return Counted(1)

    _, report = run_job(
        sessions,
        JobName.INGEST,
        SystemClock(),
        slow,
        owner="host-a:11",
        heartbeat=timedelta(seconds=0.1),
    )
    with sessions() as s:
        row = s.get_one(JobRun, report.run_id)
    assert row.owner == "host-a:11" and row.status is RunStatus.SUCCESS
    assert row.heartbeat_at is not None and row.finished_at is not None
    assert row.started_at < row.heartbeat_at <= row.finished_at  # it beat after the start


def _row(
    sessions: sessionmaker[Session],
    status: RunStatus,
    heartbeat_at: datetime | None,
    started_at: datetime,
    owner: str | None = "host-a:11",
) -> int:
    with sessions.begin() as s:
        row = JobRun(
            job="ingest",
            started_at=started_at,
            status=status,
            counts={},
            owner=owner,
            heartbeat_at=heartbeat_at,
        )
        s.add(row)
        s.flush()
        return row.id


def test_running_rows_without_a_heartbeat_are_abandoned_saying_when_and_by_whom(
    sessions: sessionmaker[Session],
) -> None:
    dead = _row(sessions, RunStatus.RUNNING, NOW - timedelta(seconds=120), NOW - timedelta(hours=1))
    alive = _row(sessions, RunStatus.RUNNING, NOW - timedelta(seconds=5), NOW - timedelta(hours=1))
    before_heartbeats = _row(sessions, RunStatus.RUNNING, None, NOW - timedelta(minutes=5), None)
    finished = _row(sessions, RunStatus.SUCCESS, NOW - timedelta(hours=2), NOW - timedelta(hours=2))

    marked = abandon_stale_runs(
        sessions, now=NOW, stale_after=timedelta(seconds=60), by="host-b:22"
    )

    assert marked == [dead, before_heartbeats]
    with sessions() as s:
        rows = {r.id: r for r in s.scalars(select(JobRun))}
    assert rows[dead].status is RunStatus.ABANDONED
    assert rows[dead].finished_at == NOW and rows[dead].abandoned_by == "host-b:22"
    assert rows[dead].error == (
        "abandoned: no heartbeat from host-a:11 since 2026-11-24T11:58:00+00:00; "
        "marked by host-b:22 at 2026-11-24T12:00:00+00:00"
    )
    assert "no heartbeat from an unknown process since 2026-11-24T11:55:00" in (
        rows[before_heartbeats].error or ""
    )
    assert rows[alive].status is RunStatus.RUNNING and rows[alive].abandoned_by is None
    assert rows[finished].status is RunStatus.SUCCESS and rows[finished].finished_at is None
    assert abandon_stale_runs(sessions, now=NOW, stale_after=timedelta(seconds=60), by="x") == []


@pytest.fixture
def outage_sessions(engine: Engine) -> OutageSessions:
    """Sessions of the migrated database that a test can switch off."""
    return OutageSessions(engine, expire_on_commit=False)


def test_an_attempt_the_database_cannot_take_is_kept_whole_and_recorded_later(
    outage_sessions: OutageSessions,
) -> None:
    clock = ManualClock(NOW)
    worked: list[int] = []
    outage_sessions.down = True

    def work(run_id: int) -> Counted:
        worked.append(run_id)
        return Counted(0)

    with pytest.raises(RunNotRecordedError, match="ingest run could not be recorded") as caught:
        run_job(outage_sessions, JobName.INGEST, clock, work)

    attempt = caught.value.run
    assert worked == []  # no row, no work
    assert attempt.run_id is None and attempt.status is RunStatus.FAILED
    assert (attempt.error or "").startswith("not started: OperationalError: ")
    outage_sessions.down = False
    (run_id,) = record_runs(outage_sessions, [attempt])
    with outage_sessions() as s:
        row = s.get_one(JobRun, run_id)
    assert (row.job, row.status, row.error, row.started_at) == (
        "ingest",
        RunStatus.FAILED,
        attempt.error,
        NOW,
    )
    assert row.owner == attempt.owner and row.finished_at == NOW


@pytest.mark.parametrize("fails", [False, True])
def test_an_outcome_the_database_cannot_take_is_written_on_its_row_later(
    outage_sessions: OutageSessions, fails: bool
) -> None:
    def work(_run_id: int) -> Counted:
        outage_sessions.down = True  # the database goes away while the job works
        if fails:
            raise ValueError("bad line 'x'")
        return Counted(3)

    with pytest.raises(RunNotRecordedError) as caught:
        run_job(outage_sessions, JobName.DRIFT, ManualClock(NOW), work)

    outcome = caught.value.run
    assert outcome.run_id is not None
    outage_sessions.down = False
    with outage_sessions() as s:
        assert s.get_one(JobRun, outcome.run_id).status is RunStatus.RUNNING  # meanwhile
    assert record_runs(outage_sessions, [outcome]) == [outcome.run_id]
    with outage_sessions() as s:
        row = s.get_one(JobRun, outcome.run_id)
    if fails:
        assert row.status is RunStatus.FAILED and row.error == "ValueError: bad line 'x'"
    else:
        assert row.status is RunStatus.SUCCESS and row.counts == {"n": 3} and row.error is None
