"""Leadership: one leader, named to the others; takeover; abandoned runs; an unreachable lock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.clock import ManualClock
from monitor.jobs.leader import leader_lock
from monitor.jobs.lease import Leadership, Role
from monitor.storage.schema import JobRun, LeaderLease, RunStatus
from tests.support.outage import SwitchableLock

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _pair(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path, clock: ManualClock
) -> tuple[Leadership, Leadership]:
    a = Leadership(
        leader_lock(engine, tmp_path), sessions, clock, identity="a:1", url="http://a:9464"
    )
    b = Leadership(
        leader_lock(engine, tmp_path), sessions, clock, identity="b:2", url="http://b:9464"
    )
    return a, b


def test_a_fresh_pair_elects_one_leader_and_the_standby_names_it(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    clock = ManualClock(NOW)
    a, b = _pair(engine, sessions, tmp_path, clock)
    try:
        assert a.check().role is Role.LEADER
        clock.advance(timedelta(seconds=5))
        standby = b.check()
        assert standby.role is Role.STANDBY
        assert standby.leader is not None
        assert (standby.leader.holder, standby.leader.url) == ("a:1", "http://a:9464")
        assert (standby.leader.acquired_at, standby.leader.renewed_at) == (NOW, NOW)
        assert a.check().role is Role.LEADER  # renewing keeps the lock and the lease
        with sessions() as s:
            lease = s.scalars(select(LeaderLease)).one()
        assert (lease.holder, lease.acquired_at, lease.renewed_at) == (
            "a:1",
            NOW,
            NOW + timedelta(seconds=5),
        )
    finally:
        a.release()
        b.release()


def test_the_standby_takes_over_when_the_leader_lets_go(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    clock = ManualClock(NOW)
    a, b = _pair(engine, sessions, tmp_path, clock)
    try:
        a.check()
        b.check()
        a.release()  # the lease row goes with it
        with sessions() as s:
            assert s.scalars(select(LeaderLease)).all() == []
        clock.advance(timedelta(seconds=5))
        assert b.check().role is Role.LEADER
        state = a.check()
        assert state.role is Role.STANDBY and state.leader is not None
        assert state.leader.holder == "b:2" and state.leader.acquired_at == NOW + timedelta(
            seconds=5
        )
    finally:
        a.release()
        b.release()


def test_only_the_leader_marks_runs_whose_heartbeat_stopped_abandoned(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    clock = ManualClock(NOW)
    a, b = _pair(engine, sessions, tmp_path, clock)
    with sessions.begin() as s:
        run = JobRun(
            job="embed",
            started_at=NOW - timedelta(minutes=10),
            status=RunStatus.RUNNING,
            counts={},
            owner="dead:3",
            heartbeat_at=NOW - timedelta(seconds=30),
        )
        s.add(run)
    try:
        a.check()
        b.check()
        clock.advance(timedelta(seconds=40))  # now its heartbeat is 70 s old
        b.check()
        with sessions() as s:
            assert s.get_one(JobRun, run.id).status is RunStatus.RUNNING  # not the standby's job
        a.check()
        with sessions() as s:
            row = s.get_one(JobRun, run.id)
        assert row.status is RunStatus.ABANDONED and row.abandoned_by == "a:1"
        assert row.finished_at == NOW + timedelta(seconds=40)
    finally:
        a.release()
        b.release()


def test_an_unreachable_lock_makes_the_role_unknown_until_the_database_is_back(
    sessions: sessionmaker[Session],
) -> None:
    clock = ManualClock(NOW)
    lock = SwitchableLock()
    leadership = Leadership(lock, sessions, clock, identity="a:1")
    assert leadership.check().role is Role.LEADER
    lock.down = True
    clock.advance(timedelta(seconds=5))
    state = leadership.check()
    assert state.role is Role.UNKNOWN and leadership.was_leader
    assert state.checked_at == NOW + timedelta(seconds=5)
    assert (state.error or "").startswith("database unreachable: OperationalError: ")
    lock.down = False
    clock.advance(timedelta(seconds=5))
    back = leadership.check()
    assert back.role is Role.LEADER and back.leader is not None
    assert back.leader.acquired_at == NOW + timedelta(seconds=10)  # led again from then
    leadership.release()
