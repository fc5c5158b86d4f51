"""Leader locks: one holder at a time; a lost or silent holder frees the lock."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from monitor.jobs.leader import AdvisoryLock, leader_lock, lock_id_parts, schema_key
from monitor.storage.engine import make_engine


def test_postgres_advisory_lock_admits_one_leader(postgres_url: str) -> None:
    a, b = make_engine(postgres_url), make_engine(postgres_url)
    la, lb = leader_lock(a, Path("/nonexistent")), leader_lock(b, Path("/nonexistent"))
    try:
        assert la.try_acquire() and la.try_acquire()
        assert not lb.try_acquire()
        la.release()
        assert lb.try_acquire()
    finally:
        la.release()
        lb.release()
        a.dispose()
        b.dispose()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    """An engine on the test's private PostgreSQL schema."""
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def _holder_pid(engine: Engine, key: int) -> int | None:
    hi, lo = lock_id_parts(key)
    with engine.connect() as conn:
        pid = conn.execute(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid::bigint = :hi AND objid::bigint = :lo"
            ),
            {"hi": hi, "lo": lo},
        ).scalar()
    return None if pid is None else int(pid)


def test_a_lost_leader_connection_loses_the_lock_and_the_other_takes_it(
    pg_engine: Engine,
) -> None:
    a, b = AdvisoryLock(pg_engine), AdvisoryLock(pg_engine)
    try:
        assert a.try_acquire() and not b.try_acquire()
        assert a.key is not None
        pid = _holder_pid(pg_engine, a.key)
        assert pid is not None
        with pg_engine.connect() as conn:  # the leader's connection dies
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        with pytest.raises(OperationalError, match="terminating connection"):
            a.holds()  # noticed on its next check
        assert not a.holds()
        assert b.try_acquire()
        assert not a.try_acquire()
    finally:
        a.release()
        b.release()


def test_a_silent_leader_frees_the_lock_after_its_lease(pg_engine: Engine) -> None:
    a = AdvisoryLock(pg_engine, lease=timedelta(seconds=2))
    b = AdvisoryLock(pg_engine, lease=timedelta(seconds=2))
    try:
        assert a.try_acquire() and not b.try_acquire()
        took = None
        start = time.monotonic()
        while took is None and time.monotonic() - start < 10:  # bounded: 10 s
            time.sleep(0.25)  # a is silent: no heartbeat
            if b.try_acquire():
                took = time.monotonic() - start
        assert took is not None and took >= 1.5  # freed by the lease, not at once
        assert not a.try_acquire()
    finally:
        a.release()
        b.release()


def test_two_schemas_of_one_database_elect_two_leaders(postgres_url: str) -> None:
    other = f"segmon_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{other}"'))
    other_url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={other}"})
    second = make_engine(other_url.render_as_string(hide_password=False))
    a, b = AdvisoryLock(admin), AdvisoryLock(second)
    try:
        assert a.try_acquire() and b.try_acquire()
        assert b.key == schema_key(other) and a.key != b.key
    finally:
        a.release()
        b.release()
        second.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{other}" CASCADE'))
        admin.dispose()
