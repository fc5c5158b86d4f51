"""The scheduler's Service: only the leader runs jobs, and a failed job is recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.jobs.leader import FileLock
from monitor.jobs.scheduler import Service
from monitor.service.schedule import build_jobs
from monitor.storage.schema import JobRun, RunStatus
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
