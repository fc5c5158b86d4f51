"""The scheduler's Service: only the leader runs jobs, elected by a heartbeat; failures recorded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock, SystemClock
from monitor.config import Settings
from monitor.jobs.leader import FileLock, leader_lock
from monitor.jobs.lease import NotLeaderError, Role
from monitor.jobs.names import JobName
from monitor.jobs.scheduler import JobSpec, Service
from monitor.service.schedule import build_jobs
from monitor.storage.schema import JobRun, RunStatus
from tests.support.outage import OutageSessions, SwitchableLock
from tests.support.processes import wait_until
from tests.support.samplelog import LogBuilder


def test_only_the_leader_runs_jobs(
    sessions: sessionmaker[Session], tmp_path: Path, log_builder: LogBuilder
) -> None:
    clock = ManualClock(datetime(2026, 11, 24, tzinfo=UTC))
    log_builder.write([log_builder.line() for _ in range(2)])
    settings = Settings(sources=(str(log_builder.root),))
    jobs = build_jobs(sessions, settings, clock)
    first = Service(sessions, jobs, FileLock(tmp_path / "lock"), clock)
    second = Service(sessions, jobs, FileLock(tmp_path / "lock"), clock)
    try:
        assert first.run_once("ingest") is not None
        assert second.run_once("ingest") is None and not second.leading
        first.shutdown()  # leadership passes on
        assert second.run_once("ingest") is not None
    finally:
        first.shutdown()
        second.shutdown()
    with sessions() as s:
        assert s.scalars(select(JobRun.status)).all() == [RunStatus.SUCCESS, RunStatus.SUCCESS]


def test_failed_job_is_recorded_and_the_service_carries_on(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    clock = ManualClock(datetime(2026, 11, 24, tzinfo=UTC))
    settings = Settings(sources=(str(tmp_path / "missing"),))
    service = Service(
        sessions, build_jobs(sessions, settings, clock), FileLock(tmp_path / "lock"), clock
    )
    try:
        assert service.run_once("ingest") is None
    finally:
        service.shutdown()
    with sessions() as s:
        run = s.scalars(select(JobRun)).one()
    assert run.status is RunStatus.FAILED and "missing" in (run.error or "")


def _idle_jobs(calls: list[str]) -> list[JobSpec]:
    """Two jobs that fire hourly (never during a test) and count their runs."""

    def work(name: str) -> Callable[[int], Done]:
        def run(_run_id: int) -> Done:
            calls.append(name)
            return Done()

        return run

    return [
        JobSpec(JobName.INGEST, timedelta(hours=1), work("ingest")),
        JobSpec(JobName.DRIFT, timedelta(hours=1), work("drift")),
    ]


@dataclass
class Done:
    def counts(self) -> dict[str, Any]:
        return {}


def test_the_heartbeat_elects_at_start_and_hands_over_without_any_job_firing(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    calls: list[str] = []
    beat = timedelta(seconds=0.2)
    a, b = (
        Service(
            sessions,
            _idle_jobs(calls),
            leader_lock(engine, tmp_path),
            SystemClock(),
            heartbeat=beat,
            identity=name,
        )
        for name in ("a:1", "b:2")
    )
    try:
        a.start("http://127.0.0.1:1")
        b.start("http://127.0.0.1:2")
        assert a.leading and not b.leading  # elected at start, no job has fired
        leader = b.lease_state().leader
        assert leader is not None and (leader.holder, leader.url) == ("a:1", "http://127.0.0.1:1")
        with pytest.raises(NotLeaderError, match=r"b:2 is not the leader; the leader is a:1 at"):
            b.trigger("ingest")
        a.shutdown()
        assert wait_until(lambda: b.leading, deadline_s=10, step_s=0.05)
        assert b.lease_state().role is Role.LEADER
    finally:
        a.shutdown()
        b.shutdown()
    assert calls == []


def _outage_service(
    sessions: OutageSessions, lock: SwitchableLock, clock: ManualClock, calls: list[str], limit: int
) -> Service:
    return Service(sessions, _idle_jobs(calls), lock, clock, identity="a:1", unrecorded_limit=limit)


@pytest.fixture
def outage_sessions(engine: Engine) -> OutageSessions:
    """Sessions of the migrated database that a test can switch off."""
    return OutageSessions(engine, expire_on_commit=False)


def test_failed_attempts_during_an_outage_are_recorded_when_the_database_is_back(
    outage_sessions: OutageSessions,
) -> None:
    clock = ManualClock(datetime(2026, 11, 24, tzinfo=UTC))
    lock, calls = SwitchableLock(), list[str]()
    service = _outage_service(outage_sessions, lock, clock, calls, 1000)
    assert service.tick().role is Role.LEADER
    outage_sessions.down = lock.down = True  # the database stops
    assert service.run_once("ingest") is None  # the lock cannot be checked
    lock.down = False  # the lock's connection is back, the others are not yet
    clock.advance(timedelta(minutes=1))
    assert service.run_once("drift") is None  # cannot even write its row
    assert service.tick().role is Role.LEADER and service.unrecorded == 2  # still waiting
    outage_sessions.down = False
    service.tick()
    assert service.unrecorded == 0
    with outage_sessions() as s:
        rows = s.scalars(select(JobRun).order_by(JobRun.id)).all()
    assert [(r.job, r.status, r.owner) for r in rows] == [
        ("ingest", RunStatus.FAILED, "a:1"),
        ("drift", RunStatus.FAILED, "a:1"),
    ]
    assert (rows[0].error or "").startswith(
        "not run: leadership unconfirmed: database unreachable: OperationalError: "
    )
    assert (rows[1].error or "").startswith("not started: OperationalError: ")
    assert calls == []  # no work ran without a confirmed lock
    service.leadership.release()


def test_attempts_beyond_the_limit_are_summarised_in_one_row_not_lost(
    outage_sessions: OutageSessions,
) -> None:
    start = datetime(2026, 11, 24, tzinfo=UTC)
    clock = ManualClock(start)
    lock, calls = SwitchableLock(), list[str]()
    service = _outage_service(outage_sessions, lock, clock, calls, 2)
    service.tick()
    outage_sessions.down = lock.down = True
    for _ in range(5):  # five attempts, room for two
        service.run_once("ingest")
        clock.advance(timedelta(minutes=1))
    assert service.unrecorded == 5
    outage_sessions.down = lock.down = False
    service.tick()
    with outage_sessions() as s:
        rows = s.scalars(select(JobRun).order_by(JobRun.id)).all()
    summary, *kept = rows
    assert summary.counts == {"attempts": 3} and summary.status is RunStatus.FAILED
    assert (summary.started_at, summary.finished_at) == (start, start + timedelta(minutes=2))
    assert (summary.error or "").startswith(
        "3 more failed attempts between 2026-11-24T00:00:00+00:00 and 2026-11-24T00:02:00+00:00"
    )
    assert [r.started_at for r in kept] == [start + timedelta(minutes=m) for m in (3, 4)]
    service.leadership.release()
